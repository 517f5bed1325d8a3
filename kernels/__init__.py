"""kernels: tensor ops of gramserve (paged attention, KV write, fused sampling).

Imports nothing of ours. Every Triton kernel has a pure-torch reference in `kernels.reference`;
the engine picks the Triton path on CUDA and the torch path on the CPU, once at start-up.
"""
from kernels.reference import gather_kv, paged_attention, write_kv

__all__ = ["gather_kv", "paged_attention", "write_kv"]
