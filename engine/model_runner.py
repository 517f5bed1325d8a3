"""Model runner: turns a SchedulerOutput into a ForwardBatch, runs the model, samples.

It owns the KV cache tensors and never touches scheduler state: it reads the scheduled
requests' token ids, counters and block tables, and returns plain tensors.
"""
from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass

import torch

from engine.forward_batch import ForwardBatch
from engine.loader import LoadedModel
from engine.sampler import prepare_sampling
from engine.scheduler import SchedulerOutput
import kernels


@dataclass
class ModelRunnerOutput:
    req_ids: list[str]  # requests that sampled a token this step, in row order
    token_ids: list[int]
    logprobs: list[float] | None
    top_ids: list[list[int]] | None
    top_logprobs: list[list[float]] | None


class ModelRunner:
    def __init__(self, loaded: LoadedModel, num_blocks: int, block_size: int, device: str = "cpu") -> None:
        self.model = loaded.model
        self.model.pack()  # matmul weights into the kernel backend's layout, once
        self.cfg = loaded.config
        self.vocab_size = len(loaded.tokenizer)
        self.block_size = block_size
        self.device = torch.device(device)
        # fills grammar bitmasks while the forward runs (torch releases the GIL inside its ops)
        self._mask_pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bitmask")
        dtype = next(self.model.parameters()).dtype
        shape = (num_blocks, block_size, self.cfg.num_kv_heads, self.cfg.head_dim)
        # one (K, V) pair per layer: [num_blocks, block_size, Hkv, D]
        self.kv_caches = [
            (torch.zeros(shape, dtype=dtype, device=self.device), torch.zeros(shape, dtype=dtype, device=self.device))
            for _ in range(self.cfg.num_layers)
        ]

    def build_batch(self, sched: SchedulerOutput) -> ForwardBatch:
        bs = self.block_size
        ids: list[int] = []
        pos: list[int] = []
        slots: list[int] = []
        qsl = [0]
        seq_lens: list[int] = []
        logits_idx: list[int] = []
        for s in sched.scheduled:
            r, n, table = s.request, s.num_new_tokens, s.block_table
            start = r.num_computed_tokens
            ids.extend(r.token_ids[start : start + n])
            rng = range(start, start + n)
            pos.extend(rng)
            slots.extend(table[p // bs] * bs + p % bs for p in rng)
            qsl.append(qsl[-1] + n)
            seq_lens.append(start + n)
            if s.samples:
                logits_idx.append(qsl[-1] - 1)
        max_blocks = max(len(s.block_table) for s in sched.scheduled)
        padded = [s.block_table + [0] * (max_blocks - len(s.block_table)) for s in sched.scheduled]
        tables = torch.tensor(padded, dtype=torch.int32)  # [B, M]
        return ForwardBatch(
            input_ids=torch.tensor(ids, dtype=torch.long, device=self.device),
            positions=torch.tensor(pos, dtype=torch.long, device=self.device),
            slot_mapping=torch.tensor(slots, dtype=torch.long, device=self.device),
            query_start_loc=torch.tensor(qsl, dtype=torch.int32, device=self.device),
            seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=self.device),
            block_tables=tables.to(self.device),
            logits_indices=torch.tensor(logits_idx, dtype=torch.long, device=self.device),
            max_query_len=max(s.num_new_tokens for s in sched.scheduled),
            max_seq_len=max(seq_lens),
        )

    @torch.inference_mode()
    def execute(self, sched: SchedulerOutput, bitmask_fn=None) -> ModelRunnerOutput:
        """Run one step. `bitmask_fn(rows)` (optional) returns the grammar bitmask for the sampled
        rows; it is called after the forward is launched so mask filling can overlap with it."""
        batch = self.build_batch(sched)
        sampled = [s.request for s in sched.scheduled if s.samples]
        constrained = bitmask_fn is not None and any(r.matcher is not None for r in sampled)
        # the matchers are only advanced after this step returns, so filling now is safe
        mask_future = self._mask_pool.submit(bitmask_fn, sampled) if constrained else None
        hidden = self.model(batch, self.kv_caches)  # [T, H]
        if not sampled:
            return ModelRunnerOutput([], [], None, None, None)
        logits = self.model.compute_logits(hidden[batch.logits_indices])  # [B, V_model] float32
        bitmask = mask_future.result() if mask_future is not None else None
        tensors = prepare_sampling(sampled, self.vocab_size, bitmask, self.device)
        out = kernels.sample(logits, tensors)
        want_lp = any(r.params.logprobs is not None for r in sampled)
        return ModelRunnerOutput(
            req_ids=[r.request_id for r in sampled],
            token_ids=out.token_ids.tolist(),
            logprobs=out.logprobs.tolist() if want_lp else None,
            top_ids=out.top_ids.tolist() if want_lp and out.top_ids is not None else None,
            top_logprobs=out.top_logprobs.tolist() if want_lp and out.top_logprobs is not None else None,
        )
