"""The torch sampler (the specification, and the engine's CPU path) against the written rules."""
import math

import pytest
import torch
from spec_sampling import CASES, build_case, chi_square_ok, transformed_probs

from kernels.reference import (
    merge_sparse,
    philox_uniform,
    sample_reference,
    unpack_bitmask,
)


def test_philox_known_answer_and_range():
    # Random123 Philox4x32-10 known answer: key (0, 0), counter (0, 0, 0, 0) -> word0 0x6627e8d5
    u = philox_uniform(torch.tensor([0]), torch.tensor([0]))
    assert float(u[0]) == (0x6627E8D5 >> 9) * 2.0**-23
    seeds = torch.tensor([-1, 2**63 - 1, 5, 5], dtype=torch.long)
    pos = torch.tensor([2**40, 0, 1, 2], dtype=torch.long)
    u = philox_uniform(seeds, pos)
    assert ((u >= 0) & (u <= 1 - 2.0**-23)).all()
    assert len(set(u.tolist())) == 4  # the counter and the key both matter


def test_draw_depends_on_seed_and_position_not_row(make_tensors):
    torch.manual_seed(0)
    logits = torch.randn(1, 50).repeat(8, 1)  # identical rows
    seeds = torch.tensor([11, 12, 11, 13, 11, 12, 14, 11])
    pos = torch.tensor([3, 3, 3, 4, 3, 3, 9, 3])
    out = sample_reference(logits, make_tensors(8, 50, seeds=seeds, positions=pos)).token_ids
    perm = torch.randperm(8)
    out_p = sample_reference(logits, make_tensors(8, 50, seeds=seeds[perm], positions=pos[perm])).token_ids
    assert torch.equal(out_p, out[perm])
    assert out[0] == out[2] == out[4] == out[7] and out[1] == out[5]


def test_greedy_logprobs_padding_and_ties(make_tensors):
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.5, 99.0], [0.0, 0.0, 0.0, 0.0, 99.0]])  # col 4 = padding
    t = make_tensors(2, 4, temperature=torch.zeros(2), num_logprobs=2)
    out = sample_reference(logits, t)
    assert out.token_ids.tolist() == [1, 0]  # first maximum; padding column never chosen
    raw = torch.log_softmax(logits[:, :4], -1)
    torch.testing.assert_close(out.logprobs, raw.gather(1, out.token_ids[:, None])[:, 0])
    torch.testing.assert_close(out.top_logprobs, torch.topk(raw, 2, -1).values)


def test_bitmask_unpack_little_endian():
    words = torch.tensor([[-(2**31) + 0b101, 0], [0, 1]], dtype=torch.int32)  # bits 0, 2 and 31
    bits = unpack_bitmask(words, 33)
    assert bits[0].nonzero()[:, 0].tolist() == [0, 2, 31]
    assert bits[1].nonzero()[:, 0].tolist() == [32]


def test_fully_masked_row_and_mask_is_respected(make_tensors):
    torch.manual_seed(1)
    logits = torch.randn(3, 70)
    mask = torch.zeros(3, 3, dtype=torch.int32)
    mask[1, 1] = 1 << 4  # only token 36 allowed
    mask[2] = -1  # all allowed, but V = 70 < 96: columns >= 70 stay masked
    out = sample_reference(logits, make_tensors(3, 70, bitmask=mask))
    assert out.token_ids[0] == 0 and out.token_ids[1] == 36 and out.token_ids[2] < 70


def test_penalty_rules_and_sparse_merge(make_tensors):
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5, 0.0, 3.0]])
    t = make_tensors(
        1, 6, temperature=torch.zeros(1), repetition_penalty=torch.tensor([2.0]),
        presence_penalty=torch.tensor([0.25]), frequency_penalty=torch.tensor([0.5]),
        prompt_token_mask=(torch.tensor([0, 0]), torch.tensor([0, 1])),
        output_token_counts=(torch.tensor([0, 0]), torch.tensor([5, 5]), torch.tensor([1.0, 2.0])),
        logit_bias=(torch.tensor([0, 0, 0]), torch.tensor([2, 2, 9]), torch.tensor([1.0, 0.5, 7.0])),
    )
    e = merge_sparse(t, torch.device("cpu"))
    got = {int(i): (float(b), float(c), bool(p)) for i, b, c, p in zip(e.tokens, e.bias, e.counts, e.in_prompt)}
    assert got == {0: (0.0, 0.0, True), 1: (0.0, 0.0, True), 2: (1.5, 0.0, False), 5: (0.0, 3.0, False)}
    # token 0: 2/2 = 1; token 1: -2*2 = -4; token 2: 1 + 1.5 = 2.5; token 5: 3/2 - 3*0.5 - 0.25 = -0.25
    assert int(sample_reference(logits, t).token_ids[0]) == 2
    t.logit_bias = None  # now token 0 (1.0) beats 3 (0.5), 5 (-0.25)
    assert int(sample_reference(logits, t).token_ids[0]) == 0


def test_top_p_keeps_ties_together(make_tensors):
    logits = torch.tensor([[2.0, 1.0, 1.0, 1.0, -5.0]]).repeat(400, 1)
    t = make_tensors(400, 5, top_p=torch.full((400,), 0.5))  # mass(2.0) ~ 0.4 < 0.5: all 1.0s stay
    toks = sample_reference(logits, t).token_ids
    assert set(toks.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_draws_follow_the_transformed_distribution(make_tensors, name):
    logits, t = build_case(make_tensors, name, b=20000, v=37, width=40)
    probs = transformed_probs(t, logits, 0)
    toks = sample_reference(logits, t).token_ids
    assert set(toks.tolist()) <= set(probs.nonzero()[:, 0].tolist())
    ok, stat, crit = chi_square_ok(toks, probs)
    assert ok, f"chi-square {stat:.1f} >= {crit:.1f}"
    assert not math.isnan(stat)
