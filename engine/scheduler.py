"""Continuous batching: each step, grant tokens to requests under a token budget.

Policy (FCFS with recompute preemption):
1. Running requests first, oldest first. Each asks for `num_tokens - num_computed_tokens`
   (1 when decoding; a chunk when its prefill is still in progress). If the block manager cannot
   give it slots, the NEWEST running request is preempted (its blocks freed, its counter reset to
   0, its generated tokens kept) and put back at the head of the queue; repeat until it fits.
2. Then, unless something was preempted this step, waiting requests join in arrival order while
   the budget and `max_num_seqs` allow. A new request first looks up its prefix in the cache
   (its counter starts at the cached length), and its prompt may be split into chunks across steps.

The scheduler only moves counters and block tables; the model runner reads the plain
`SchedulerOutput` and never touches scheduler state.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from engine.block_manager import BlockManager
from engine.config import SchedulerConfig
from engine.request import FINISHED, Request, RequestStatus


@dataclass
class ScheduledRequest:
    request: Request
    num_new_tokens: int
    block_table: list[int]

    @property
    def samples(self) -> bool:
        """True when this step brings the request level with its tokens: a token is sampled."""
        r = self.request
        return r.num_computed_tokens + self.num_new_tokens == r.num_tokens


@dataclass
class SchedulerOutput:
    scheduled: list[ScheduledRequest] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)
    # requests that cannot fit in the whole KV cache even alone; the engine finishes them ("length")
    unschedulable: list[Request] = field(default_factory=list)
    num_batched_tokens: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.scheduled


class Scheduler:
    def __init__(self, config: SchedulerConfig, block_manager: BlockManager, max_model_len: int) -> None:
        self.config = config
        self.bm = block_manager
        self.max_model_len = max_model_len
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.requests: dict[str, Request] = {}

    # -- queue management -------------------------------------------------------------------
    def add_request(self, req: Request) -> None:
        self.requests[req.request_id] = req
        self.waiting.append(req)

    def finish_request(self, req: Request, status: RequestStatus) -> None:
        """Move a request to a finished status and give its blocks back (abort included)."""
        assert status in FINISHED
        if req.is_finished:
            return
        if req.status == RequestStatus.RUNNING:
            self.running.remove(req)
        elif req in self.waiting:
            self.waiting.remove(req)
        req.status = status
        self.bm.free(req.request_id)
        self.requests.pop(req.request_id, None)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def num_running(self) -> int:
        return len(self.running)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    # -- the step ----------------------------------------------------------------------------
    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.config.max_num_batched_tokens
        scheduled_ids: set[str] = set()
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            n = min(req.num_tokens - req.num_computed_tokens, budget)
            table = self._allocate_or_preempt(req, n, out)
            if table is None:
                break  # req itself was preempted (it was the newest)
            out.scheduled.append(ScheduledRequest(req, n, table))
            scheduled_ids.add(req.request_id)
            budget -= n
            i += 1
        if not out.preempted:
            budget = self._admit_waiting(budget, out)
        out.num_batched_tokens = self.config.max_num_batched_tokens - budget
        return out

    def _allocate_or_preempt(self, req: Request, n: int, out: SchedulerOutput) -> list[int] | None:
        while True:
            table = self.bm.allocate_slots(req.request_id, req.token_ids, req.num_computed_tokens, n)
            if table is not None:
                return table
            victim = self.running.pop()  # newest running request
            self._preempt(victim)
            out.preempted.append(victim.request_id)
            if victim is req:
                return None

    def _preempt(self, req: Request) -> None:
        self.bm.free(req.request_id)
        req.status = RequestStatus.PREEMPTED
        req.num_computed_tokens = 0
        req.num_preemptions += 1
        self.waiting.appendleft(req)

    def _admit_waiting(self, budget: int, out: SchedulerOutput) -> int:
        skipped: list[Request] = []
        while self.waiting and budget > 0 and len(self.running) < self.config.max_num_seqs:
            req = self.waiting[0]
            if not self._ready(req):
                skipped.append(self.waiting.popleft())
                continue
            blocks, num_cached = self.bm.get_computed_blocks(req.token_ids)
            n = req.num_tokens - num_cached
            if n > budget:
                if not self.config.enable_chunked_prefill:
                    break
                n = budget
            table = self.bm.allocate_slots(req.request_id, req.token_ids, num_cached, n, blocks)
            if table is None:
                if not self.running and not out.scheduled and self.bm.usage == 0.0:
                    # nothing else holds blocks and it still does not fit: it never will
                    self.waiting.popleft()
                    out.unschedulable.append(req)
                    continue
                break
            self.waiting.popleft()
            req.num_computed_tokens = num_cached
            if req.num_cached_tokens < 0:
                req.num_cached_tokens = num_cached
            req.status = RequestStatus.RUNNING
            self.running.append(req)
            out.scheduled.append(ScheduledRequest(req, n, table))
            budget -= n
        self.waiting.extendleft(reversed(skipped))
        return budget

    def _ready(self, req: Request) -> bool:
        """Hold a request back while it cannot run yet.

        - its grammar is still compiling (status WAITING_FOR_GRAMMAR);
        - it is a parallel sample (n > 1) whose first sibling has not computed the shared prompt
          yet: waiting lets it reuse the sibling's prompt blocks through the prefix cache.
        """
        if req.status == RequestStatus.WAITING_FOR_GRAMMAR:
            return False
        if req.index > 0 and req.num_computed_tokens == 0 and req.num_output_tokens == 0:
            leader = self.requests.get(f"{req.parent_id}#0") if req.parent_id != req.request_id else None
            if leader is not None and not leader.is_finished and leader.num_computed_tokens < leader.num_prompt_tokens:
                return False
        return True

    def update_after_step(self, sched: SchedulerOutput) -> None:
        """Advance counters of everything computed this step (sampled tokens are appended by the engine)."""
        for s in sched.scheduled:
            s.request.num_computed_tokens += s.num_new_tokens
