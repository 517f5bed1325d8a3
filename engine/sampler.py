"""Sampler glue: turn the requests sampled this step into the batched tensors of kernels.sample.

The transforms themselves (and their fixed order: grammar mask -> logit bias -> penalties ->
temperature -> min-p / top-k / top-p -> seeded sample or argmax) live in kernels/sampling.py;
this module only gathers per-request parameters into [B] tensors and sparse lists, so one
batched call serves greedy, sampled, penalized and constrained rows together.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.request import Request
from kernels import SamplingTensors


def _sparse_counts(reqs: list[Request], rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, t, c = [], [], []
    for row in rows:
        counts = reqs[row].output_counts
        r.extend([row] * len(counts))
        t.extend(counts.keys())
        c.extend(counts.values())
    return torch.tensor(r, dtype=torch.long), torch.tensor(t, dtype=torch.long), torch.tensor(c, dtype=torch.float32)


def _prompt_tokens(reqs: list[Request], rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    r, t = [], []
    for row in rows:
        uniq = set(reqs[row].prompt_token_ids)
        r.extend([row] * len(uniq))
        t.extend(uniq)
    return torch.tensor(r, dtype=torch.long), torch.tensor(t, dtype=torch.long)


def _logit_bias(reqs: list[Request]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """User logit_bias plus min_tokens: stop/EOS tokens are banned (-inf) until min_tokens is reached."""
    r, t, v = [], [], []
    for row, req in enumerate(reqs):
        p = req.params
        if p.logit_bias:
            for tok, val in p.logit_bias.items():
                r.append(row)
                t.append(int(tok))
                v.append(float(val))
        if p.min_tokens and req.num_output_tokens < p.min_tokens:
            banned = set(p.stop_token_ids or ()) | (set() if p.ignore_eos else set(req.eos_token_ids))
            for tok in banned:
                r.append(row)
                t.append(tok)
                v.append(float("-inf"))
    if not r:
        return None
    return torch.tensor(r, dtype=torch.long), torch.tensor(t, dtype=torch.long), torch.tensor(v, dtype=torch.float32)


def prepare_sampling(
    reqs: list[Request], vocab_size: int, bitmask: np.ndarray | None, device: torch.device
) -> SamplingTensors:
    ps = [r.params for r in reqs]
    temperature = [p.temperature for p in ps]
    top_p = [p.top_p for p in ps]
    top_k = [max(p.top_k, 0) for p in ps]
    min_p = [p.min_p for p in ps]
    rep = [p.repetition_penalty for p in ps]
    pres = [p.presence_penalty for p in ps]
    freq = [p.frequency_penalty for p in ps]
    pen_rows = [i for i, p in enumerate(ps) if p.presence_penalty or p.frequency_penalty or p.repetition_penalty != 1.0]
    rep_rows = [i for i in pen_rows if ps[i].repetition_penalty != 1.0]
    num_lp = max((p.logprobs or 0) for p in ps) if any(p.logprobs is not None for p in ps) else 0
    f32 = dict(dtype=torch.float32)
    return SamplingTensors(
        temperature=torch.tensor(temperature, **f32),
        top_p=torch.tensor(top_p, **f32),
        top_k=torch.tensor(top_k, dtype=torch.int32),
        min_p=torch.tensor(min_p, **f32),
        seeds=torch.tensor([r.seed for r in reqs], dtype=torch.long),
        positions=torch.tensor([r.num_output_tokens for r in reqs], dtype=torch.long),
        repetition_penalty=torch.tensor(rep, **f32),
        presence_penalty=torch.tensor(pres, **f32),
        frequency_penalty=torch.tensor(freq, **f32),
        bitmask=torch.from_numpy(bitmask) if bitmask is not None else None,
        logit_bias=_logit_bias(reqs),
        output_token_counts=_sparse_counts(reqs, pen_rows) if pen_rows else None,
        prompt_token_mask=_prompt_tokens(reqs, rep_rows) if rep_rows else None,
        vocab_size=vocab_size,
        num_logprobs=num_lp,
        all_greedy=all(t == 0 for t in temperature),
        any_penalties=bool(pen_rows),
        any_top_p_top_k=any(p < 1.0 for p in top_p) or any(k > 0 for k in top_k),
        any_min_p=any(m > 0 for m in min_p),
    )
