"""DecoderLM against transformers' own implementations, on tiny random-weight configs.

Each architecture runs a two-sequence varlen prefill, then decodes token by token through a paged
cache with shuffled block ids; every logit row must match HF's full-sequence forward to 1e-4.
"""
from __future__ import annotations

import pytest
import torch
import transformers

import kernels

from engine.forward_batch import ForwardBatch
from engine.models import DecoderLM, ModelConfig, RopeConfig
from engine.models.rope import inv_frequencies

BLOCK = 4
TINY = dict(
    vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5,
)
CASES = {
    "llama": (transformers.LlamaConfig, dict(
        attention_bias=True, mlp_bias=True, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=16))),
    "mistral": (transformers.MistralConfig, dict(
        sliding_window=5, head_dim=24, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="linear", rope_theta=500.0, factor=2.0))),
    "qwen2": (transformers.Qwen2Config, dict(
        use_sliding_window=True, sliding_window=6, max_window_layers=1, tie_word_embeddings=True,
        rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                             original_max_position_embeddings=32))),
    "qwen3": (transformers.Qwen3Config, dict(
        head_dim=32, attention_bias=True, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0))),
}


def make_batch(new_tokens: list[list[int]], cached: list[int], block_tables: torch.Tensor) -> ForwardBatch:
    """A flat batch: sequence b appends new_tokens[b] after cached[b] tokens already in the cache."""
    ids, pos, slots, qsl = [], [], [], [0]
    for b, (toks, start) in enumerate(zip(new_tokens, cached)):
        for j, tok in enumerate(toks):
            p = start + j
            ids.append(tok)
            pos.append(p)
            slots.append(int(block_tables[b, p // BLOCK]) * BLOCK + p % BLOCK)
        qsl.append(qsl[-1] + len(toks))
    seq_lens = [c + len(t) for c, t in zip(cached, new_tokens)]
    return ForwardBatch(
        input_ids=torch.tensor(ids), positions=torch.tensor(pos), slot_mapping=torch.tensor(slots),
        query_start_loc=torch.tensor(qsl, dtype=torch.int32), seq_lens=torch.tensor(seq_lens, dtype=torch.int32),
        block_tables=block_tables, logits_indices=torch.arange(len(ids)),
        max_query_len=max(len(t) for t in new_tokens), max_seq_len=max(seq_lens),
    )


def build_pair(name: str, seed: int = 0):
    config_cls, extra = CASES[name]
    hf_cfg = config_cls(**TINY, **extra)
    hf_cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    hf = transformers.AutoModelForCausalLM.from_config(hf_cfg, attn_implementation="eager").eval()
    with torch.no_grad():  # HF zero-inits biases and ones-inits norms: randomize so they are exercised
        for pname, p in hf.named_parameters():
            if pname.endswith("bias") or "norm" in pname:
                p.add_(torch.randn_like(p) * 0.1)
    cfg = ModelConfig.from_hf_config(hf.config)
    ours = DecoderLM(cfg).eval()
    ours.load_hf_state_dict(hf.state_dict())
    return hf, ours, cfg


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed"])
@pytest.mark.parametrize("name", list(CASES))
def test_prefill_then_decode_matches_hf(name, packed):
    hf, ours, cfg = build_pair(name)
    if packed:  # the engine's layout: weights handed to the kernel backend (oneDNN on the CPU)
        ours.pack()
        if kernels.BACKEND.pack_linear is not kernels.reference.pack_linear:
            assert ours.layers[0].packed is not None and ours.packed_head is not None
    g = torch.Generator().manual_seed(1)
    lens, prompt_lens = [14, 11], [9, 3]
    seqs = [torch.randint(0, cfg.vocab_size, (n,), generator=g).tolist() for n in lens]
    with torch.no_grad():
        expected = [hf(torch.tensor([s])).logits[0] for s in seqs]  # [L, V] each
    num_blocks, per_seq = 16, 4
    perm = torch.randperm(num_blocks, generator=g)[: 2 * per_seq].view(2, per_seq).int()  # scattered blocks
    shape = (num_blocks, BLOCK, cfg.num_kv_heads, cfg.head_dim)
    kv = [(torch.zeros(shape), torch.zeros(shape)) for _ in range(cfg.num_layers)]
    with torch.no_grad():
        batch = make_batch([s[:p] for s, p in zip(seqs, prompt_lens)], [0, 0], perm)
        logits = ours.compute_logits(ours(batch, kv))  # [9 + 3, V]
        diffs = [(logits[:9] - expected[0][:9]).abs().max(), (logits[9:] - expected[1][:3]).abs().max()]
        done = list(prompt_lens)
        while any(d < n for d, n in zip(done, lens)):
            live = [b for b in range(2) if done[b] < lens[b]]  # both decode together while both live
            batch = make_batch([[seqs[b][done[b]]] for b in live], [done[b] for b in live], perm[live])
            step = ours.compute_logits(ours(batch, kv))  # [len(live), V]
            for row, b in enumerate(live):
                diffs.append((step[row] - expected[b][done[b]]).abs().max())
                done[b] += 1
    assert max(diffs) < 1e-4, f"{name}: max abs logit diff {max(diffs):.3g}"
    assert expected[0].abs().max() > 0.1  # the comparison is not between two zero tensors


def test_packed_model_refuses_a_second_load():
    hf, ours, _ = build_pair("llama")
    ours.pack()
    if ours.packed_head is None:
        pytest.skip("this kernel backend keeps plain weights")
    with pytest.raises(RuntimeError, match="packed"):
        ours.load_hf_state_dict(hf.state_dict())


def test_config_flags():
    flags = {n: ModelConfig.from_hf_config(CASES[n][0](**TINY, **CASES[n][1])) for n in CASES}
    assert flags["llama"].qkv_bias and flags["llama"].o_bias and flags["llama"].mlp_bias
    assert flags["llama"].rope.rope_type == "llama3" and flags["llama"].sliding_window is None
    assert flags["mistral"].layer_window(0) == 5 and flags["mistral"].head_dim == 24
    assert flags["qwen2"].qkv_bias and not flags["qwen2"].o_bias and flags["qwen2"].tie_word_embeddings
    assert [flags["qwen2"].layer_window(i) for i in range(2)] == [None, 6]
    assert flags["qwen3"].qk_norm and not flags["llama"].qk_norm and flags["qwen3"].head_dim == 32


def test_unsupported_architecture_is_named():
    cfg = transformers.GPT2Config()
    with pytest.raises(ValueError, match="GPT2LMHeadModel|gpt2"):
        cfg.architectures = ["GPT2LMHeadModel"]
        ModelConfig.from_hf_config(cfg)
    dynamic = transformers.LlamaConfig(**TINY, rope_parameters=dict(rope_type="dynamic", rope_theta=1e4, factor=2.0))
    with pytest.raises(ValueError, match="dynamic"):
        ModelConfig.from_hf_config(dynamic)


@pytest.mark.parametrize("rope_type", ["default", "linear", "llama3", "yarn"])
def test_inv_frequencies_match_hf(rope_type):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    params = dict(rope_type=rope_type, rope_theta=10000.0, factor=4.0, low_freq_factor=1.0,
                  high_freq_factor=4.0, original_max_position_embeddings=32)
    hf_cfg = transformers.LlamaConfig(**TINY, rope_parameters=params)
    ours, attn = inv_frequencies(ModelConfig.from_hf_config(hf_cfg).rope, 16, 128)
    init = ROPE_INIT_FUNCTIONS.get(rope_type) if rope_type != "default" else None
    if init is None:
        ref, ref_attn = 1.0 / (1e4 ** (torch.arange(0, 16, 2).float() / 16)), 1.0
    else:
        ref, ref_attn = init(hf_cfg, "cpu")
    torch.testing.assert_close(ours, ref)
    assert attn == pytest.approx(ref_attn)


def test_missing_weight_is_reported():
    hf, ours, _ = build_pair("qwen3")
    sd = dict(hf.state_dict())
    del sd["model.layers.1.self_attn.k_norm.weight"]
    with pytest.raises(KeyError, match="k_norm"):
        ours.load_hf_state_dict(sd)
    sd["model.layers.0.self_attn.bogus.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="bogus"):
        ours.load_hf_state_dict(sd)


def test_rope_config_defaults_are_frozen():
    cfg = ModelConfig.from_hf_config(CASES["qwen3"][0](**TINY, **CASES["qwen3"][1]))
    assert cfg.rope == RopeConfig(theta=1e6)
    with pytest.raises(Exception):
        cfg.num_layers = 3  # type: ignore[misc]
    assert cfg.with_dtype(torch.bfloat16).dtype == torch.bfloat16 and cfg.dtype == torch.float32
