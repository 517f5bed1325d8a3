"""Linear layers on the CPU through oneDNN with weights pre-packed once at load.

torch's `F.linear` on a float32 CPU tensor goes to MKL's sgemm, which re-packs the weight on every
call; at the row counts of a decode step (M = 8-128) that packing and MKL's blocking leave the
matmul at a third to a half of the AVX2 roofline on this machine. oneDNN's inner-product primitive
with the weight reordered once into its blocked layout (`torch.ops.mkldnn._reorder_linear_weight`,
the op torch's own Inductor uses for frozen CPU linears) measured 1.2-2.5x faster at M = 8-1024
on every SmolLM2 shape, the LM head most (benchmarks/RESULTS.md). Only float32 is packed: this
CPU has no AVX-512 BF16, and oneDNN refuses a bf16 reorder without it.

`pack(weight)` returns an opaque handle; `linear(x, handle, bias)` equals `F.linear(x, weight, bias)`
up to float32 rounding (a different summation order). Anything that cannot be packed keeps the
plain tensor and `linear` falls back to `F.linear`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class PackedLinear:
    """A float32 [N, K] weight in oneDNN's blocked layout (no longer a strided tensor)."""

    __slots__ = ("weight",)

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)


def pack(weight: torch.Tensor) -> PackedLinear | torch.Tensor:
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or weight.dim() != 2 or not available():
        return weight
    return PackedLinear(weight)


def linear(x: torch.Tensor, weight: PackedLinear | torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(weight, PackedLinear):
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, weight.weight, bias, "none", [], "")
