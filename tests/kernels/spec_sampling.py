"""An independent, float64, one-row-at-a-time statement of the sampling rules (kernels/sampling.py's
docstring), used by the tests to check the torch reference and, through it, the Triton kernel."""
from __future__ import annotations

import math

import torch


def transformed_probs(t, logits: torch.Tensor, row: int) -> torch.Tensor:
    """Probability of each token id < V after every transform, for row `row` (float64 [V])."""
    v = t.vocab_size
    x = logits[row, :v].double().clone()
    if t.bitmask is not None:
        words = t.bitmask[row].long() & 0xFFFFFFFF
        allowed = torch.tensor([(int(words[i // 32]) >> (i % 32)) & 1 for i in range(v)], dtype=torch.bool)
        x[~allowed] = -math.inf
    if t.logit_bias is not None:
        for r, i, b in zip(*[c.tolist() for c in t.logit_bias]):
            if r == row and 0 <= i < v:
                x[i] += b
    counts: dict[int, float] = {}
    seen: set[int] = set()
    if t.any_penalties and t.output_token_counts is not None:
        for r, i, c in zip(*[c.tolist() for c in t.output_token_counts]):
            if r == row:
                counts[i] = counts.get(i, 0.0) + c
                seen.add(i) if c > 0 else None
    if t.any_penalties and t.prompt_token_mask is not None:
        seen |= {i for r, i in zip(*[c.tolist() for c in t.prompt_token_mask]) if r == row}
    rp = float(t.repetition_penalty[row])
    for i in seen:
        x[i] = x[i] / rp if x[i] > 0 else x[i] * rp
    for i, c in counts.items():
        x[i] -= c * float(t.frequency_penalty[row]) + (c > 0) * float(t.presence_penalty[row])
    s = x / float(t.temperature[row])
    p = torch.softmax(s, 0)
    keep = p > 0
    if float(t.min_p[row]) > 0:
        keep &= p >= float(t.min_p[row]) * p.max()
    k = int(t.top_k[row])
    if 0 < k < v:
        keep &= s >= torch.sort(s, descending=True).values[k - 1]
    top_p = float(t.top_p[row])
    if top_p < 1.0:
        q = torch.where(keep, p, 0.0)
        above = torch.tensor([float(q[s > s[i]].sum()) for i in range(v)], dtype=torch.float64)
        keep &= above < top_p * q.sum()
    q = torch.where(keep, p, 0.0)
    return q / q.sum()


def chi_square_ok(tokens: torch.Tensor, probs: torch.Tensor) -> tuple[bool, float, float]:
    """Pearson chi-square of observed token counts against probs, at significance 0.001.

    Bins with an expected count under 5 are pooled; the critical value uses Wilson-Hilferty."""
    n = tokens.numel()
    obs = torch.bincount(tokens, minlength=probs.numel()).double()
    exp = probs * n
    big = exp >= 5
    o = torch.cat([obs[big], obs[~big].sum()[None]])
    e = torch.cat([exp[big], exp[~big].sum()[None]])
    if float(e[-1]) < 5:  # fold the pooled remainder into the last bin
        o, e = torch.cat([o[:-2], (o[-2] + o[-1])[None]]), torch.cat([e[:-2], (e[-2] + e[-1])[None]])
    stat = float(((o - e) ** 2 / e).sum())
    df = max(1, o.numel() - 1)
    z = 3.09  # one-sided 0.999 normal quantile
    crit = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    return stat < crit, stat, crit


CASES = {
    "temperature": {"temperature": 0.7},
    "min_p": {"min_p": 0.05},
    "top_k": {"top_k": 5},
    "top_p": {"top_p": 0.8, "temperature": 1.5},
    "all": {"min_p": 0.02, "top_k": 9, "top_p": 0.9, "temperature": 0.8, "penalties": True, "mask": True},
}


def build_case(make_tensors, name: str, b: int, v: int, width: int, seed: int = 0):
    """b rows that share one row of logits and one seed; positions 0..b-1 give b independent draws."""
    c = CASES[name]
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(1, width, generator=g) * 2).repeat(b, 1)
    kw = {
        "temperature": torch.full((b,), c.get("temperature", 1.0)), "min_p": torch.full((b,), c.get("min_p", 0.0)),
        "top_k": torch.full((b,), c.get("top_k", 0), dtype=torch.int32), "top_p": torch.full((b,), c.get("top_p", 1.0)),
        "seeds": torch.full((b,), 1234, dtype=torch.long), "positions": torch.arange(b, dtype=torch.long),
    }
    if c.get("mask"):
        words = torch.randint(-(2**31), 2**31 - 1, (1, (v + 31) // 32), dtype=torch.int32, generator=g)
        kw["bitmask"] = words.repeat(b, 1)
    if c.get("penalties"):
        rows = torch.arange(b).repeat_interleave(3)
        kw.update(
            repetition_penalty=torch.full((b,), 1.5), presence_penalty=torch.full((b,), 0.3),
            frequency_penalty=torch.full((b,), 0.2),
            prompt_token_mask=(rows, torch.tensor([0, 1, 2]).repeat(b)),
            output_token_counts=(rows, torch.tensor([2, 3, 4]).repeat(b), torch.tensor([1.0, 2.0, 3.0]).repeat(b)),
            logit_bias=(torch.arange(b), torch.full((b,), 7), torch.full((b,), 1.5)),
        )
    return logits, make_tensors(b, v, **kw)
