"""ForwardBatch: what the model runner hands the model for one step (passed explicitly, no globals).

The batch is flat ("varlen"): the scheduled tokens of all requests, one request after another.

    request:          r0            r1     r2
    input_ids:   [t t t t t t]   [t]    [t t t]        T = 10 tokens
    query_start_loc: 0            6      7      10      (B+1)
    seq_lens:        6+cached0    ...                   context after this step, per request
    logits_indices:  5            6      9              last token of each request (rows sampled)

slot_mapping[i] = block_tables[b, pos // block_size] * block_size + pos % block_size for token i of
request b at position pos (see kernels/reference.py for the cache layout).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ForwardBatch:
    input_ids: torch.Tensor  # [T] int64
    positions: torch.Tensor  # [T] int64 absolute position of each token in its sequence
    slot_mapping: torch.Tensor  # [T] int64 cache slot each new K/V is written to
    query_start_loc: torch.Tensor  # [B+1] int32
    seq_lens: torch.Tensor  # [B] int32 context length after this step
    block_tables: torch.Tensor  # [B, max_blocks] int32 (padding entries are 0 and never read)
    logits_indices: torch.Tensor  # [B] int64 rows of the hidden states to turn into logits
    max_query_len: int
    max_seq_len: int

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_seqs(self) -> int:
        return int(self.seq_lens.shape[0])
