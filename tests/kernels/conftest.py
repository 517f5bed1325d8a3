"""Kernel tests run the Triton kernels on the CPU through Triton's interpreter.

TRITON_INTERPRET must be set before a kernel is decorated; if another test package imported
kernels.* first (compiled-mode kernels), the kernel modules are reloaded here.
"""
import importlib
import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest


def _interpreted(name: str, kernel: str):
    mod = importlib.import_module(name)
    if type(getattr(mod, kernel)).__name__ != "InterpretedFunction":
        mod = importlib.reload(mod)
    return mod


@pytest.fixture(scope="session")
def tri_attention():
    return _interpreted("kernels.attention", "_paged_attn_kernel")


@pytest.fixture(scope="session")
def tri_sampling(tri_attention):
    return _interpreted("kernels.sampling", "_sample_kernel")


@pytest.fixture(scope="session")
def make_tensors():
    """make_tensors(B, V, **overrides) -> SamplingTensors with every transform off."""
    import torch

    from kernels.reference import SamplingTensors

    def make(b: int, v: int, **kw) -> SamplingTensors:
        d = {
            "temperature": torch.ones(b), "top_p": torch.ones(b), "top_k": torch.zeros(b, dtype=torch.int32),
            "min_p": torch.zeros(b), "seeds": torch.arange(b, dtype=torch.long) * 7919 + 3,
            "positions": torch.arange(b, dtype=torch.long), "repetition_penalty": torch.ones(b),
            "presence_penalty": torch.zeros(b), "frequency_penalty": torch.zeros(b), "vocab_size": v,
        }
        d.update(kw)
        d.setdefault("all_greedy", bool((d["temperature"] == 0).all()))
        d.setdefault("any_top_p_top_k", bool((d["top_p"] < 1).any() or (d["top_k"] > 0).any()))
        d.setdefault("any_min_p", bool((d["min_p"] > 0).any()))
        d.setdefault("any_penalties", d.get("output_token_counts") is not None or d.get("prompt_token_mask") is not None)
        return SamplingTensors(**d)

    return make
