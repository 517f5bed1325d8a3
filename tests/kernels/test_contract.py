"""Contracts across the kernels boundary.

1. The engine's CPU sampler (`kernels.select_backend("cpu").sample`, the torch path) and the
   Triton kernel agree on the same SamplingTensors.
2. A bitmask row produced by grammar/ (the producer of the int32, little-endian, bit = 1 allowed
   format) is applied identically by both: exactly the tokens the matcher allows can come out.
"""
import numpy as np
import pytest
import torch

import kernels
from grammar import GrammarCompiler, Vocabulary, allocate_bitmask


def _vocab() -> Vocabulary:
    # 70 tokens (3 bitmask words, the last one partial): digits, letters, a few multi-byte ones
    toks = [b"<eos>"] + [bytes([c]) for c in b"0123456789abcdefghijklmnopqrstuvwxyz"]
    toks += [b"12", b"345", b"ab", b"-", b".", b" ", b"\n", b"x1", b"99", b"00"]
    toks += [b"w%d" % i for i in range(70 - len(toks))]
    return Vocabulary(toks, eos_token_ids=[0])


def test_cpu_backend_is_the_torch_reference():
    cpu = kernels.select_backend("cpu")
    assert cpu.name == "torch"  # the reference itself, or it with the C grammar-mask pass
    assert getattr(cpu.sample, "func", cpu.sample) is kernels.reference.sample_reference
    attention = cpu.paged_attention  # the reference itself, or it with the C decode hook
    assert getattr(attention, "func", attention) is kernels.reference.paged_attention


@pytest.mark.parametrize("greedy", [True, False])
def test_grammar_bitmask_applied_identically(tri_sampling, make_tensors, greedy):
    vocab = _vocab()
    matcher = GrammarCompiler(vocab).compile_regex(r"-?[0-9]+(\.[0-9]+)?").matcher()
    b, width = 6, 72  # model logits wider than the tokenizer's 70 tokens
    mask = allocate_bitmask(b, vocab.size)  # [6, 3] int32
    for row in range(b):
        matcher.fill_bitmask(mask[row])
    allowed = np.unpackbits(mask.view(np.uint8), bitorder="little").reshape(b, -1)[:, : vocab.size]
    allowed_ids = set(np.nonzero(allowed[0])[0].tolist())
    assert allowed_ids and allowed_ids < set(range(vocab.size))  # digits and "-" only
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(b, width, generator=gen) * 4
    logits[:, 70:] = 100.0  # padding columns must never win
    t = make_tensors(
        b, vocab.size, bitmask=torch.from_numpy(mask), num_logprobs=2,
        temperature=torch.zeros(b) if greedy else torch.full((b,), 5.0),
        positions=torch.zeros(b, dtype=torch.long), seeds=torch.arange(b, dtype=torch.long),
    )
    cpu = kernels.select_backend("cpu").sample(logits, t)
    tri = tri_sampling.sample_triton(logits, t, block=32)
    assert torch.equal(cpu.token_ids, tri.token_ids)
    torch.testing.assert_close(cpu.logprobs, tri.logprobs, atol=1e-4, rtol=0)
    assert set(cpu.token_ids.tolist()) <= allowed_ids
    if greedy:  # the best allowed token
        best = max(allowed_ids, key=lambda i: float(logits[0, i]))
        assert int(cpu.token_ids[0]) == best
