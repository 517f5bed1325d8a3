"""LLMEngine: add_request / step / abort. One step = schedule -> run -> postprocess.

    add_request ──> Scheduler.waiting ──schedule()──> SchedulerOutput ──ModelRunner──> sampled ids
                                                                                      │
    outputs <── detokenize, stop checks, grammar advance, free finished <─────────────┘

`step()` returns one `EngineOutput` per (sub-)request that produced something this step: the new
token ids and text delta, and the finish reason once it ends. The offline `LLM` and the async
server both build on these deltas.
"""
from __future__ import annotations

import concurrent.futures as cf
import gc
import itertools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from engine.block_manager import BlockManager, num_blocks_for_budget
from engine.config import EngineConfig
from engine.detokenizer import IncrementalDetokenizer
from engine.errors import InvalidParameterError
from engine.loader import LoadedModel, configure_threads, load_model
from engine.model_runner import ModelRunner, ModelRunnerOutput
from engine.outputs import Logprob
from engine.request import FINISH_REASON, Request, RequestStatus
from engine.sampling_params import SamplingParams
from engine.scheduler import Scheduler
from engine.structured import StructuredOutputManager

logger = logging.getLogger("gramserve.engine")

PromptType = str | Sequence[int] | dict


@dataclass
class EngineOutput:
    request_id: str  # the user's request id (the parent of n parallel samples)
    index: int  # which of the n samples
    new_token_ids: list[int]
    delta_text: str
    finished: bool = False
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    new_logprobs: list[dict[int, Logprob]] | None = None
    error: str | None = None
    num_cached_tokens: int = 0  # prompt tokens served from the prefix cache (set when finished)


@dataclass
class EngineStats:
    num_steps: int = 0
    num_prompt_tokens: int = 0  # computed (not cached) prompt tokens
    num_generated_tokens: int = 0
    num_preemptions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class LLMEngine:
    def __init__(self, config: EngineConfig, loaded: LoadedModel | None = None, progress: bool = True) -> None:
        self.config = config
        configure_threads()
        self.loaded = loaded or load_model(config.model.model, dtype=config.model.dtype, progress=progress)
        self.tokenizer = self.loaded.tokenizer
        self.model_config = self.loaded.config
        self.eos_token_ids = frozenset(self.loaded.eos_token_ids)
        mcfg = self.model_config
        self.max_model_len = min(config.scheduler.max_model_len or mcfg.max_position_embeddings, mcfg.max_position_embeddings)
        bs = config.cache.block_size
        num_blocks = config.cache.num_blocks
        if num_blocks is None:
            dtype_bytes = next(self.loaded.model.parameters()).element_size()
            budget = num_blocks_for_budget(
                config.cache.kv_cache_memory_bytes, bs, mcfg.num_layers, mcfg.num_kv_heads, mcfg.head_dim, dtype_bytes
            )
            needed = config.scheduler.max_num_seqs * -(-self.max_model_len // bs)
            num_blocks = max(1, min(budget, needed))
        self.block_manager = BlockManager(num_blocks, bs, config.cache.enable_prefix_caching)
        self.scheduler = Scheduler(config.scheduler, self.block_manager, self.max_model_len)
        self.runner = ModelRunner(self.loaded, num_blocks, bs)
        self.stats = EngineStats()
        self._ids = itertools.count()
        self._children: dict[str, list[str]] = {}  # user request id -> sub-request ids
        self.structured = StructuredOutputManager(self.tokenizer, mcfg.vocab_size)
        self._compiling: dict[str, tuple[Request, Any]] = {}  # sub-request id -> (request, future)
        self._errors: list[EngineOutput] = []  # requests failed outside a step (grammar errors)
        # Everything built so far (torch, transformers, the tokenizer: ~360k tracked objects for
        # SmolLM2) lives as long as the engine; a full cyclic-GC pass over it measured ~310 ms,
        # which would land on a decode step or a grammar mask whenever allocation triggers one.
        # Freezing moves it out of the collector's sight (vLLM does the same after start-up).
        gc.collect()
        gc.freeze()

    # -- requests ------------------------------------------------------------------------------
    def tokenize_prompt(self, prompt: PromptType) -> tuple[str | None, list[int]]:
        if isinstance(prompt, str):
            return prompt, self.tokenizer.encode(prompt, add_special_tokens=False)
        if isinstance(prompt, dict):
            if "prompt_token_ids" in prompt:
                return prompt.get("prompt"), [int(t) for t in prompt["prompt_token_ids"]]
            if "prompt" in prompt:
                return self.tokenize_prompt(prompt["prompt"])
            raise InvalidParameterError("prompt", "a prompt dict needs 'prompt' or 'prompt_token_ids'")
        return None, [int(t) for t in prompt]

    def validate_prompt(self, token_ids: list[int], params: SamplingParams) -> None:
        if not token_ids:
            raise InvalidParameterError("prompt", "the prompt is empty")
        vocab = self.model_config.vocab_size
        bad = next((t for t in token_ids if not 0 <= t < vocab), None)
        if bad is not None:
            raise InvalidParameterError("prompt", f"token id {bad} is outside the vocabulary [0, {vocab})")
        bs = self.block_manager.block_size
        if -(-(len(token_ids) + 1) // bs) > self.block_manager.num_blocks:
            raise InvalidParameterError(
                "prompt", f"the prompt has {len(token_ids)} tokens, more than the KV cache holds "
                f"({self.block_manager.num_blocks} blocks of {bs} tokens)",
            )
        if len(token_ids) >= self.max_model_len:
            raise InvalidParameterError(
                "prompt",
                f"the prompt has {len(token_ids)} tokens, which leaves no room to generate within the "
                f"model's context length of {self.max_model_len} tokens",
            )

    def add_request(
        self, request_id: str | None, prompt: PromptType, params: SamplingParams, arrival_time: float | None = None
    ) -> str:
        """Queue a request (n > 1: n sub-requests sharing the prompt's blocks). Returns its id."""
        request_id = request_id if request_id is not None else str(next(self._ids))
        if request_id in self._children:
            raise InvalidParameterError("request_id", f"request {request_id!r} already exists")
        text, token_ids = self.tokenize_prompt(prompt)
        self.validate_prompt(token_ids, params)
        base_seed = params.seed if params.seed is not None else random.getrandbits(62)
        subs = []
        for i in range(params.n):
            sub_id = request_id if params.n == 1 else f"{request_id}#{i}"
            req = Request(
                sub_id, token_ids, params, seed=base_seed + i, eos_token_ids=self.eos_token_ids, prompt=text,
                parent_id=request_id, index=i, arrival_time=arrival_time,
            )
            req.detokenizer = IncrementalDetokenizer(self.tokenizer, token_ids, params)
            subs.append(req)
        if params.structured_outputs is not None:
            future = self.structured.submit(params.structured_outputs)  # one compile, cached
            for req in subs:
                req.status = RequestStatus.WAITING_FOR_GRAMMAR
                self._compiling[req.request_id] = (req, future)
        self._children[request_id] = [r.request_id for r in subs]
        for req in subs:
            self.scheduler.add_request(req)
        return request_id

    def abort_request(self, request_id: str) -> None:
        for sub_id in self._children.pop(request_id, []):
            self._compiling.pop(sub_id, None)
            req = self.scheduler.requests.get(sub_id)
            if req is not None:
                self.scheduler.finish_request(req, RequestStatus.FINISHED_ABORTED)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished() or bool(self._errors)

    def get_num_unfinished_requests(self) -> int:
        return self.scheduler.num_waiting + self.scheduler.num_running

    # -- the step --------------------------------------------------------------------------------
    def _poll_grammars(self) -> None:
        """Release requests whose grammar compiled; fail those whose grammar did not."""
        for sub_id, (req, fut) in list(self._compiling.items()):
            if not fut.done():
                continue
            del self._compiling[sub_id]
            err = fut.exception()
            if err is None:
                req.matcher = fut.result().matcher()
                req.status = RequestStatus.WAITING
                continue
            self.scheduler.finish_request(req, RequestStatus.FINISHED_ERROR)
            req.error = f"{type(err).__name__}: {err}"
            self._errors.append(EngineOutput(req.parent_id, req.index, [], "", True, "error", error=req.error))
            self._forget(req)

    def _fill_bitmask(self, rows: list):
        """The grammar rows of this step's sampled requests (runs on the runner's mask thread)."""
        return self.structured.fill_bitmask(rows, [self._tokens_left(r) for r in rows])

    def _tokens_left(self, req) -> int:
        """Tokens `req` may still emit, the one sampled this step included."""
        left = self.max_model_len - req.num_tokens
        if req.params.max_tokens is not None:
            left = min(left, req.params.max_tokens - req.num_output_tokens)
        return left

    def step(self) -> list[EngineOutput]:
        if self._compiling:
            self._poll_grammars()
        errors, self._errors = self._errors, []
        sched = self.scheduler.schedule()
        self.stats.num_preemptions += len(sched.preempted)
        for req in sched.unschedulable:
            errors.append(self._finish_now(req, RequestStatus.FINISHED_LENGTH))
        if sched.is_empty:
            if not errors and self._compiling and not self.scheduler.running:
                cf.wait([f for _, f in self._compiling.values()], timeout=0.05, return_when=cf.FIRST_COMPLETED)
            return errors
        run_out = self.runner.execute(sched, self._fill_bitmask)
        for s in sched.scheduled:
            if s.request.num_computed_tokens < s.request.num_prompt_tokens:
                self.stats.num_prompt_tokens += min(s.num_new_tokens, s.request.num_prompt_tokens - s.request.num_computed_tokens)
        self.scheduler.update_after_step(sched)
        self.stats.num_steps += 1
        return errors + self._postprocess(run_out)

    def _postprocess(self, run_out: ModelRunnerOutput) -> list[EngineOutput]:
        outputs = []
        now = time.monotonic()
        for row, (req_id, tok) in enumerate(zip(run_out.req_ids, run_out.token_ids)):
            req = self.scheduler.requests.get(req_id)
            if req is None or req.is_finished:
                continue
            if req.first_token_time is None:
                req.first_token_time = now
            if req.matcher is not None and not req.matcher.accept_token(tok):
                # cannot happen when the mask is exact; fail loudly rather than emit invalid output
                self.scheduler.finish_request(req, RequestStatus.FINISHED_ERROR)
                req.error = f"internal error: sampled token {tok} was rejected by the grammar"
                outputs.append(EngineOutput(req.parent_id, req.index, [], "", True, "error", error=req.error))
                self._forget(req)
                continue
            req.append_token(tok)
            self.stats.num_generated_tokens += 1
            new_lp = self._record_logprobs(req, row, tok, run_out)
            status, by_token = self._check_stop(req, tok)
            keep_text = not by_token or (req.stop_reason is not None and req.params.include_stop_str_in_output)
            delta = req.detokenizer.add([tok]) if keep_text else ""
            if status is None and req.detokenizer.stopped:
                status, req.stop_reason = RequestStatus.FINISHED_STOPPED, req.detokenizer.stop_reason
            out = EngineOutput(req.parent_id, req.index, [tok], delta, new_logprobs=new_lp)
            if status is not None:
                out.delta_text += req.detokenizer.flush()
                self.scheduler.finish_request(req, status)
                out.finished, out.finish_reason, out.stop_reason = True, FINISH_REASON[status], req.stop_reason
                out.num_cached_tokens = max(req.num_cached_tokens, 0)
                self._forget(req)
            outputs.append(out)
        return outputs

    def _finish_now(self, req: Request, status: RequestStatus) -> EngineOutput:
        """Finish a request outside the sampling path (it holds no blocks and samples nothing)."""
        self.scheduler.finish_request(req, status)
        self._forget(req)
        return EngineOutput(req.parent_id, req.index, [], req.detokenizer.flush(), True, FINISH_REASON[status])

    def _check_stop(self, req: Request, tok: int) -> tuple[RequestStatus | None, bool]:
        """(finish status or None, whether the sampled token itself is the stop)."""
        p = req.params
        n_out = req.num_output_tokens
        if n_out >= p.min_tokens:
            if tok in self.eos_token_ids and not p.ignore_eos:
                return RequestStatus.FINISHED_STOPPED, True
            if p.stop_token_ids and tok in p.stop_token_ids:
                req.stop_reason = tok
                return RequestStatus.FINISHED_STOPPED, True
        if req.matcher is not None and req.matcher.is_terminated():
            return RequestStatus.FINISHED_STOPPED, tok in self.eos_token_ids
        if (p.max_tokens is not None and n_out >= p.max_tokens) or req.num_tokens >= self.max_model_len:
            return RequestStatus.FINISHED_LENGTH, False
        return None, False

    def _record_logprobs(self, req: Request, row: int, tok: int, ro: ModelRunnerOutput) -> list[dict[int, Logprob]] | None:
        if req.params.logprobs is None or ro.logprobs is None:
            return None
        lp = ro.logprobs[row]
        dec = req.detokenizer.detokenize_logprob_token
        entry: dict[int, Logprob] = {}
        k = req.params.logprobs
        if k and ro.top_ids is not None:
            for rank, (tid, tlp) in enumerate(zip(ro.top_ids[row][:k], ro.top_logprobs[row][:k]), start=1):
                entry[tid] = Logprob(tlp, rank, dec(tid))
        if tok not in entry:
            entry = {tok: Logprob(lp, None, dec(tok)), **entry}
        req.logprobs.append(entry)
        req.cumulative_logprob += lp
        return [entry]

    def _forget(self, req: Request) -> None:
        subs = self._children.get(req.parent_id)
        if subs is not None and all(s not in self.scheduler.requests for s in subs):
            del self._children[req.parent_id]
