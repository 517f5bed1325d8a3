"""Engine configuration: one small frozen dataclass per component, passed down.

Derived values produce a new config (`dataclasses.replace`), never a mutation. Environment
variables are read in one place: `EngineConfig.from_kwargs` (GRAMSERVE_* overrides).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from engine.errors import InvalidParameterError

GiB = 1 << 30


@dataclass(frozen=True)
class CacheConfig:
    block_size: int = 16
    # KV memory budget; the number of blocks is derived from it and the model's shapes.
    kv_cache_memory_bytes: int = 4 * GiB
    num_blocks: int | None = None  # explicit override (tests force preemption with a tiny value)
    enable_prefix_caching: bool = True


@dataclass(frozen=True)
class SchedulerConfig:
    max_num_seqs: int = 128  # running requests at most
    max_num_batched_tokens: int = 1024  # tokens computed per step (prefill chunks + decodes)
    max_model_len: int | None = None  # None: the model's context length
    enable_chunked_prefill: bool = True
    max_waiting: int | None = None  # queue bound (the server answers 429/503 beyond it)


@dataclass(frozen=True)
class ModelLoadConfig:
    model: str | None = None  # HF directory or GGUF file; None = embedded SmolLM2-135M-Instruct
    dtype: str | None = None  # "float32" / "bfloat16"; None = the measured CPU default
    served_model_name: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class EngineConfig:
    model: ModelLoadConfig = field(default_factory=ModelLoadConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)

    @classmethod
    def from_kwargs(cls, **kw) -> "EngineConfig":
        """Build from flat keyword arguments (vLLM's names), rejecting unknown ones."""
        env = os.environ
        if "GRAMSERVE_KV_CACHE_GB" in env and "kv_cache_memory_bytes" not in kw:
            kw["kv_cache_memory_bytes"] = int(float(env["GRAMSERVE_KV_CACHE_GB"]) * GiB)
        parts = {}
        for name, klass in (("model", ModelLoadConfig), ("cache", CacheConfig), ("scheduler", SchedulerConfig)):
            names = {f.name for f in dataclasses.fields(klass)}
            parts[name] = klass(**{k: kw.pop(k) for k in list(kw) if k in names})
        if kw:
            bad = sorted(kw)[0]
            raise InvalidParameterError(bad, f"unknown engine option {bad!r}")
        cfg = cls(**parts)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        s, c = self.scheduler, self.cache
        if s.max_num_seqs < 1:
            raise InvalidParameterError("max_num_seqs", "must be >= 1")
        if s.max_num_batched_tokens < 1:
            raise InvalidParameterError("max_num_batched_tokens", "must be >= 1")
        if c.block_size < 1 or c.block_size & (c.block_size - 1):
            raise InvalidParameterError("block_size", "must be a power of two")
        if c.num_blocks is not None and c.num_blocks < 1:
            raise InvalidParameterError("num_blocks", "must be >= 1")
        if not s.enable_chunked_prefill and s.max_model_len and s.max_num_batched_tokens < s.max_model_len:
            raise InvalidParameterError(
                "max_num_batched_tokens", "must be >= max_model_len when chunked prefill is disabled"
            )
