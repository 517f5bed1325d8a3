"""Scheduler policy without a model: a fake runner appends a token whenever a request samples."""
from __future__ import annotations

import random

import pytest

from engine.block_manager import BlockManager
from engine.config import SchedulerConfig
from engine.request import FINISHED, Request, RequestStatus
from engine.sampling_params import SamplingParams
from engine.scheduler import Scheduler


def make(num_blocks=64, block_size=4, max_num_seqs=8, budget=32, chunked=True):
    bm = BlockManager(num_blocks, block_size)
    cfg = SchedulerConfig(max_num_seqs=max_num_seqs, max_num_batched_tokens=budget, enable_chunked_prefill=chunked)
    return Scheduler(cfg, bm, max_model_len=4096), bm


def req(rid, n_prompt, max_tokens=8, base=0, **kw):
    return Request(rid, [base + i for i in range(n_prompt)], SamplingParams(max_tokens=max_tokens, **kw), seed=0)


def run_step(s: Scheduler, bm: BlockManager, next_token=lambda r: 1000 + r.num_output_tokens):
    out = s.schedule()
    assert out.num_batched_tokens <= s.config.max_num_batched_tokens
    assert len(s.running) <= s.config.max_num_seqs
    for r in out.unschedulable:
        s.finish_request(r, RequestStatus.FINISHED_LENGTH)
    sampling = [x.request for x in out.scheduled if x.samples]
    s.update_after_step(out)
    for r in sampling:
        r.append_token(next_token(r))
        if r.num_output_tokens >= r.params.max_tokens:
            s.finish_request(r, RequestStatus.FINISHED_LENGTH)
    bm.check_invariants()
    return out


def test_new_requests_join_a_running_batch():
    s, bm = make()
    a = req("a", 6)
    s.add_request(a)
    run_step(s, bm)
    assert a.num_output_tokens == 1
    b = req("b", 5, base=100)
    s.add_request(b)
    out = run_step(s, bm)
    ids = {x.request.request_id: x.num_new_tokens for x in out.scheduled}
    assert ids == {"a": 1, "b": 5}  # a decodes while b prefills, in one step
    assert a.num_output_tokens == 2 and b.num_output_tokens == 1


def test_chunked_prefill_respects_the_token_budget():
    s, bm = make(budget=8)
    a = req("a", 20)
    s.add_request(a)
    chunks = []
    while a.num_output_tokens == 0:
        out = run_step(s, bm)
        chunks.append(out.scheduled[0].num_new_tokens)
    assert chunks == [8, 8, 4]
    assert a.num_computed_tokens == 20 and a.num_tokens == 21


def test_without_chunked_prefill_a_long_prompt_waits_for_a_big_enough_budget():
    s, bm = make(budget=8, chunked=False)
    s.add_request(req("a", 20))
    assert s.schedule().is_empty


def test_preemption_recomputes_and_keeps_generated_tokens():
    # 6 blocks of 4 slots: two requests of 8 prompt tokens + growth cannot both fit
    s, bm = make(num_blocks=6, budget=64)
    a, b = req("a", 8, max_tokens=12), req("b", 8, max_tokens=12, base=50)
    s.add_request(a)
    s.add_request(b)
    preempted = []
    for _ in range(200):
        if not s.has_unfinished():
            break
        out = run_step(s, bm)
        preempted += out.preempted
    assert not s.has_unfinished()
    assert "b" in preempted  # the newest request is the victim
    assert b.num_preemptions >= 1
    # generated tokens survived preemption: outputs are exactly 1000, 1001, ...
    assert a.output_token_ids == [1000 + i for i in range(12)]
    assert b.output_token_ids == [1000 + i for i in range(12)]
    assert bm.num_free_blocks == bm.num_blocks


def test_abort_frees_blocks_at_any_time():
    s, bm = make()
    a, b = req("a", 10), req("b", 7, base=40)
    s.add_request(a)
    s.add_request(b)
    run_step(s, bm)
    s.finish_request(a, RequestStatus.FINISHED_ABORTED)
    assert a.status in FINISHED and a not in s.running
    bm.check_invariants()
    s.finish_request(b, RequestStatus.FINISHED_ABORTED)
    assert bm.num_free_blocks == bm.num_blocks and not s.has_unfinished()


def test_prefix_cache_hit_starts_the_counter_above_zero():
    s, bm = make(block_size=4)
    a = req("a", 13, max_tokens=1)
    s.add_request(a)
    run_step(s, bm)
    b = req("b", 13, max_tokens=1)  # same prompt
    s.add_request(b)
    out = run_step(s, bm)
    assert b.num_cached_tokens == 12  # 3 full blocks cached; the last token is recomputed
    assert out.scheduled[0].num_new_tokens == 1


def test_max_num_seqs_caps_the_running_batch():
    s, bm = make(max_num_seqs=2, budget=100)
    for i in range(4):
        s.add_request(req(f"r{i}", 3, base=10 * i))
    out = run_step(s, bm)
    assert len(out.scheduled) == 2 and s.num_waiting == 2


@pytest.mark.parametrize("seed", range(5))
def test_random_workload_finishes_everything(seed):
    rng = random.Random(seed)
    s, bm = make(num_blocks=24, block_size=4, max_num_seqs=4, budget=rng.choice([6, 16, 64]))
    reqs = [req(f"r{i}", rng.randint(1, 30), max_tokens=rng.randint(1, 10), base=rng.choice([0, 0, 500])) for i in range(12)]
    pending = list(reqs)
    for step in range(2000):
        if pending and rng.random() < 0.3:
            s.add_request(pending.pop())
        if rng.random() < 0.03 and s.running:
            s.finish_request(rng.choice(s.running), RequestStatus.FINISHED_ABORTED)
        if not pending and not s.has_unfinished():
            break
        run_step(s, bm)
    assert not pending and not s.has_unfinished()
    for r in reqs:
        if r.status == RequestStatus.FINISHED_LENGTH:
            assert r.output_token_ids == [1000 + i for i in range(r.params.max_tokens)]
    assert bm.num_free_blocks == bm.num_blocks


def test_a_request_outgrowing_the_whole_cache_is_finished_not_retried_forever():
    s, bm = make(num_blocks=6, block_size=4, budget=64)  # 24 token slots in all
    big = req("big", 20, max_tokens=10)  # would need 30 slots
    small = req("small", 3, max_tokens=2, base=500)
    s.add_request(big)
    s.add_request(small)
    unschedulable = []
    for _ in range(100):
        if not s.has_unfinished():
            break
        out = run_step(s, bm)
        unschedulable += [r.request_id for r in out.unschedulable]
    assert not s.has_unfinished()
    assert unschedulable == ["big"] and big.status == RequestStatus.FINISHED_LENGTH
    assert big.num_output_tokens >= 1  # it ran while it fit, and kept its tokens
    assert small.status == RequestStatus.FINISHED_LENGTH and small.num_output_tokens == 2
    assert bm.num_free_blocks == bm.num_blocks
