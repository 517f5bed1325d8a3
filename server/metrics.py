"""Prometheus metrics (/metrics, text format), on a registry of the app's own.

Counted by the server as requests flow:     read from the engine at scrape time:
    gramserve_requests_total{endpoint,status}   gramserve_num_requests_running / _waiting
    gramserve_prompt_tokens_total               gramserve_kv_cache_usage_ratio
    gramserve_generation_tokens_total           gramserve_kv_cache_free_blocks / _total_blocks
    gramserve_time_to_first_token_seconds       gramserve_grammar_compiles_total
    gramserve_time_per_output_token_seconds     gramserve_grammar_compile_seconds_total
    gramserve_e2e_request_latency_seconds       gramserve_prefix_cache_hit_tokens_total
    gramserve_grammar_cache_hits_total          gramserve_engine_steps_total
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)
_TPOT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
_E2E_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)


class _EngineCollector:
    """Gauges and engine-side counters, read when Prometheus scrapes (no polling thread)."""

    def __init__(self, state) -> None:
        self.state = state  # server.app.ServerState: .engine is None until the model is loaded

    def collect(self):
        adm = self.state.admission
        yield _gauge("gramserve_sequences_in_flight", "Sequences admitted by the server and not yet done",
                     adm.in_flight)
        yield _gauge("gramserve_sequences_capacity", "In-flight sequences allowed before 429", adm.capacity)
        eng = self.state.engine
        if eng is None:
            return
        core = eng.engine
        bm = core.block_manager
        yield _gauge("gramserve_num_requests_running", "Sequences in the running batch", core.scheduler.num_running)
        yield _gauge("gramserve_num_requests_waiting", "Sequences waiting to be scheduled or for their grammar",
                     core.scheduler.num_waiting)
        yield _gauge("gramserve_kv_cache_usage_ratio", "Fraction of KV-cache blocks held by requests", bm.usage)
        yield _gauge("gramserve_kv_cache_free_blocks", "KV-cache blocks allocatable now", bm.num_free_blocks)
        yield _gauge("gramserve_kv_cache_total_blocks", "KV-cache blocks in all", bm.num_blocks)
        so = core.structured
        yield _counter("gramserve_grammar_compiles", "Grammar compile calls (cache hits included)", so.num_compiles)
        yield _counter("gramserve_grammar_compile_seconds", "Seconds spent compiling grammars", so.compile_seconds)
        yield _counter("gramserve_prefix_cache_hit_tokens", "Prompt tokens served from the prefix cache",
                       bm.stats.hits)
        yield _counter("gramserve_engine_steps", "Engine steps run", core.stats.num_steps)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc)
    g.add_metric([], float(value))
    return g


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc)
    c.add_metric([], float(value))
    return c


class Metrics:
    def __init__(self, state) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("gramserve_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=r)
        self.prompt_tokens = Counter("gramserve_prompt_tokens", "Prompt tokens of finished requests", registry=r)
        self.generation_tokens = Counter("gramserve_generation_tokens", "Generated tokens", registry=r)
        self.ttft = Histogram("gramserve_time_to_first_token_seconds", "Arrival to first token",
                              buckets=_TTFT_BUCKETS, registry=r)
        self.tpot = Histogram("gramserve_time_per_output_token_seconds", "Mean gap between output tokens",
                              buckets=_TPOT_BUCKETS, registry=r)
        self.e2e = Histogram("gramserve_e2e_request_latency_seconds", "Arrival to last token",
                             buckets=_E2E_BUCKETS, registry=r)
        self.grammar_cache_hits = Counter(
            "gramserve_grammar_cache_hits", "Constraints whose compiled grammar was already cached", registry=r)
        r.register(_EngineCollector(state))
        self._seen: OrderedDict[str, None] = OrderedDict()  # mirror of the compiler's LRU keys
        self._seen_lock = threading.Lock()  # note_grammar runs on compile worker threads

    def note_grammar(self, key: str, cache_size: int) -> bool:
        """Record one compiled constraint by its cache key; True (and a hit counted) if it was
        compiled recently (i.e. the compiler's LRU still held it)."""
        with self._seen_lock:
            hit = key in self._seen
            if hit:
                self._seen.move_to_end(key)
            else:
                self._seen[key] = None
                while len(self._seen) > cache_size:
                    self._seen.popitem(last=False)
        if hit:
            self.grammar_cache_hits.inc()
        return hit

    def observe_request(self, *, arrival: float, first_token: float | None, end: float,
                        prompt_tokens: int, output_tokens: int) -> None:
        self.prompt_tokens.inc(prompt_tokens)
        self.e2e.observe(end - arrival)
        if first_token is not None:
            self.ttft.observe(first_token - arrival)
            if output_tokens > 1:
                self.tpot.observe((end - first_token) / (output_tokens - 1))

    def render(self) -> bytes:
        return generate_latest(self.registry)
