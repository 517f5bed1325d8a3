"""Kernel tests run the Triton kernels on the CPU through Triton's interpreter, or compiled on a
GPU with GRAMSERVE_TEST_DEVICE=cuda.

TRITON_INTERPRET must be set before a kernel is decorated; if another test package imported
kernels.* first (compiled-mode kernels), the kernel modules are reloaded here.

On a GPU (GRAMSERVE_TEST_DEVICE=cuda) the same tests run the compiled kernels: the fixtures
`tri_attention` and `tri_sampling` hand out the kernel modules behind a proxy whose entry points
copy every tensor argument (also inside SamplingTensors and its tuples) to the GPU, call the
kernel, copy arguments the kernel wrote in place (the KV cache, restored logits) back into the
CPU tensors, and return the outputs on the CPU, so each test compares against the torch
reference on the CPU unchanged.
"""
import dataclasses
import importlib
import os

ON_CUDA = os.environ.get("GRAMSERVE_TEST_DEVICE", "cpu") == "cuda"
if not ON_CUDA:
    os.environ["TRITON_INTERPRET"] = "1"

import pytest


def _to(x, device):
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.replace(x, **{f.name: _to(getattr(x, f.name), device) for f in dataclasses.fields(x)})
    if isinstance(x, (tuple, list)):
        return type(x)(_to(v, device) for v in x)
    return x


class _OnCuda:
    """A kernel module whose functions take and return CPU tensors but run on the GPU."""

    def __init__(self, mod):
        self._mod = mod

    def __getattr__(self, name):
        import torch

        fn = getattr(self._mod, name)
        if not callable(fn) or isinstance(fn, type):
            return fn

        def call(*args, **kwargs):
            gargs, gkw = _to(args, "cuda"), _to(kwargs, "cuda")
            out = fn(*gargs, **gkw)
            torch.cuda.synchronize()
            for a, g in zip(args, gargs):
                if isinstance(a, torch.Tensor) and a.device.type == "cpu":
                    a.copy_(g.cpu())
            return _to(out, "cpu")

        return call


def _interpreted(name: str, kernel: str):
    mod = importlib.import_module(name)
    if ON_CUDA:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("GRAMSERVE_TEST_DEVICE=cuda but torch sees no GPU")
        return _OnCuda(mod)
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
