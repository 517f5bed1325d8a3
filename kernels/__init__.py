"""kernels: tensor ops of gramserve (paged attention, KV write, fused sampling).

Imports nothing of ours. Every Triton kernel has a pure-torch reference in `kernels.reference`
(its specification). The backend is chosen once: `select_backend(device)` returns the Triton
ops for a CUDA device and the torch ops otherwise (on the CPU, single-query decode rows, the
MLP's SiLU-and-multiply and the sampler's grammar mask go through the C kernels of `kernels.cpu_native` when they build,
and float32 linears through oneDNN with pre-packed weights, `kernels.cpu_linear`); the
module-level names below are bound at
import time for the default device (CUDA when available). Triton is imported only when the
Triton backend is selected, so a CPU-only install needs no triton.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from kernels import reference
from kernels.reference import SamplerOutput, SamplingTensors, gather_kv


@dataclass(frozen=True)
class KernelBackend:
    name: str  # "triton" or "torch"
    sample: Callable[[torch.Tensor, SamplingTensors], SamplerOutput]
    write_kv: Callable[..., None]
    paged_attention: Callable[..., torch.Tensor]
    gather_kv: Callable[..., torch.Tensor]
    silu_mul: Callable[[torch.Tensor], torch.Tensor]  # [T, 2I] gate|up -> [T, I] silu(gate) * up
    # add_rms_norm(x, residual | None, weight, eps) -> (x + residual, rms_norm(x + residual) * weight)
    add_rms_norm: Callable[..., tuple[torch.Tensor, torch.Tensor]] = reference.add_rms_norm
    # rope_write_kv(qkv, Hq, Hkv, rope_table, positions, k_cache, v_cache, slots) -> rotated q [T, Hq, D]
    rope_write_kv: Callable[..., torch.Tensor] = reference.rope_write_kv
    # pack_linear(weight [N, K]) -> handle, once at load; linear(x, handle, bias) == F.linear
    pack_linear: Callable[[torch.Tensor], object] = reference.pack_linear
    linear: Callable[..., torch.Tensor] = reference.linear


def select_backend(device: torch.device | str) -> KernelBackend:
    """Triton kernels for a CUDA device, the torch references for anything else."""
    if torch.device(device).type == "cuda":
        from kernels import attention, sampling

        return KernelBackend("triton", sampling.sample_triton, attention.write_kv, attention.paged_attention,
                             gather_kv, reference.silu_mul)
    from kernels import cpu_linear, cpu_native

    attention, silu_mul, sample = reference.paged_attention, reference.silu_mul, reference.sample_reference
    add_rms_norm, rope_write_kv = reference.add_rms_norm, reference.rope_write_kv
    if cpu_native.load() is not None:  # decode rows straight from the cache, in C
        attention = functools.partial(reference.paged_attention, decode_fn=cpu_native.decode_fn)
        silu_mul, add_rms_norm = cpu_native.silu_mul, cpu_native.add_rms_norm
        rope_write_kv = cpu_native.rope_write_kv
        sample = functools.partial(reference.sample_reference, apply_mask=cpu_native.apply_bitmask)
    pack_linear, linear = reference.pack_linear, reference.linear
    if cpu_linear.available():  # float32 weights pre-packed for oneDNN
        pack_linear, linear = cpu_linear.pack, cpu_linear.linear
    return KernelBackend("torch", sample, reference.write_kv, attention, gather_kv, silu_mul, add_rms_norm,
                         rope_write_kv, pack_linear, linear)


BACKEND = select_backend("cuda" if torch.cuda.is_available() else "cpu")
sample = BACKEND.sample
write_kv = BACKEND.write_kv
paged_attention = BACKEND.paged_attention
silu_mul = BACKEND.silu_mul
add_rms_norm = BACKEND.add_rms_norm
rope_write_kv = BACKEND.rope_write_kv
pack_linear = BACKEND.pack_linear
linear = BACKEND.linear

__all__ = [
    "BACKEND",
    "KernelBackend",
    "add_rms_norm",
    "linear",
    "pack_linear",
    "SamplerOutput",
    "SamplingTensors",
    "gather_kv",
    "paged_attention",
    "rope_write_kv",
    "sample",
    "select_backend",
    "silu_mul",
    "write_kv",
]
