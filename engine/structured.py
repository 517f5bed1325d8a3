"""Structured outputs inside the engine: compile off the hot path, mask every step, advance.

    add_request(params.structured_outputs=spec)
        -> compile on a thread pool (grammar.GrammarCompiler caches compiled grammars, LRU)
        -> the request waits as WAITING_FOR_GRAMMAR; the batch keeps running
        -> compiled: req.matcher = grammar.matcher(), the request becomes schedulable
           failed:   the request alone finishes with finish_reason "error" and the GrammarError text
    each step: fill_bitmask(rows) -> one int32 row per sampled request (all ones when unconstrained)
    after sampling: matcher.accept_token(token); a terminated matcher finishes the request
"""
from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from typing import Any

import numpy as np

from engine.sampling_params import StructuredOutputsParams

CLOSE_HORIZON = 512  # tokens left below which the shortest completion is looked at
CLOSE_MARGIN = 64  # within this many tokens of it, every token must leave a way to finish


class StructuredOutputManager:
    def __init__(self, tokenizer: Any, vocab_size: int, max_workers: int = 1) -> None:
        self._tokenizer = tokenizer
        self.vocab_size = vocab_size  # columns of the model's logits
        self._compiler = None
        self._lock = threading.Lock()
        self._pool = cf.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grammar-compile")
        self.warmup_seconds = 0.25
        self.num_compiles = 0
        self.compile_seconds = 0.0
        self.num_closings = 0  # rows given a closing mask (close_before_limit)

    @property
    def compiler(self):
        """The grammar compiler, built on first use (the vocabulary scan costs a moment)."""
        with self._lock:
            if self._compiler is None:
                from grammar import GrammarCompiler, Vocabulary

                self._compiler = GrammarCompiler(Vocabulary.from_tokenizer(self._tokenizer))
            return self._compiler

    def compile(self, spec: StructuredOutputsParams):
        """Compile synchronously (raises grammar.GrammarError). Cached by the compiler."""
        t0 = time.perf_counter()
        c = self.compiler
        kind = spec.kind
        if kind == "json":
            g = c.compile_json_schema(spec.json)
        elif kind == "json_object":
            g = c.compile_json_object()
        elif kind == "regex":
            g = c.compile_regex(spec.regex)
        elif kind == "choice":
            g = c.compile_choice(list(spec.choice))
        elif kind == "grammar":
            g = c.compile_lark(spec.grammar)
        else:  # pragma: no cover - StructuredOutputsParams validates the kind
            raise ValueError(f"unknown structured output kind {kind!r}")
        # precompute the masks of the states met first (cached inside the compiled grammar), here
        # on the compile thread rather than on the first decoding steps of the batch
        g.warmup(time_budget_s=self.warmup_seconds)
        self.num_compiles += 1
        self.compile_seconds += time.perf_counter() - t0
        return g

    def submit(self, spec: StructuredOutputsParams) -> cf.Future:
        return self._pool.submit(self.compile, spec)

    def fill_bitmask(self, reqs: list, tokens_left: list[int] | None = None) -> np.ndarray | None:
        """[B, ceil(V/32)] int32 for the sampled rows, or None when no row is constrained.

        tokens_left[i]: how many tokens row i may still emit, this one included (max_tokens and
        the context window); near that limit a row gets its closing mask (close_before_limit)."""
        if not any(r.matcher is not None for r in reqs):
            return None
        words = (self.vocab_size + 31) // 32
        bits = np.full((len(reqs), words), -1, dtype=np.int32)  # all allowed
        for row, r in enumerate(reqs):
            if r.matcher is None:
                continue
            left = tokens_left[row] if tokens_left is not None else None
            if left is not None and left <= CLOSE_HORIZON and self._closes(r, left):
                # after this token, left - 1 remain, one of them EOS, each at least one byte
                if not r.matcher.fill_budget_bitmask(bits[row], left - 2):
                    r.matcher.fill_closing_bitmask(bits[row])  # already too long: head out
                self.num_closings += 1
                continue
            r.matcher.fill_bitmask(bits[row])
        return bits

    @staticmethod
    def _closes(req, left: int) -> bool:
        so = req.params.structured_outputs
        if so is None or not so.close_before_limit:
            return False
        text = req.matcher.shortest_completion()
        return text is not None and len(text) + 1 + CLOSE_MARGIN >= left

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
