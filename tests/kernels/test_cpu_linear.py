"""kernels.cpu_linear: oneDNN linears over pre-packed float32 weights equal F.linear."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import kernels
from kernels import cpu_linear

needs_onednn = pytest.mark.skipif(not cpu_linear.available(), reason="torch built without oneDNN")


@needs_onednn
@pytest.mark.parametrize("m", [0, 1, 7, 64, 300])
@pytest.mark.parametrize("k,n,bias", [(576, 960, True), (1536, 576, False), (64, 5000, False)])
def test_packed_linear_matches_f_linear(m, k, n, bias):
    g = torch.Generator().manual_seed(m * 7 + n)
    w = torch.randn(n, k, generator=g)
    b = torch.randn(n, generator=g) if bias else None
    x = torch.randn(m, k + 3, generator=g)[:, 1 : k + 1]  # a strided view, as the model passes them
    packed = cpu_linear.pack(w)
    assert isinstance(packed, cpu_linear.PackedLinear)
    got = cpu_linear.linear(x, packed, b)
    want = F.linear(x, w, b)
    assert got.shape == (m, n) and got.dtype == torch.float32
    if m:
        scale = want.abs().max().item()
        assert (got - want).abs().max().item() <= 1e-5 * scale


def test_what_cannot_be_packed_stays_plain():
    for w in (torch.randn(8, 4, dtype=torch.bfloat16), torch.randn(8), torch.randn(8, 4, dtype=torch.float64)):
        assert cpu_linear.pack(w) is w
    w = torch.randn(8, 4, dtype=torch.bfloat16)
    x = torch.randn(3, 4, dtype=torch.bfloat16)
    assert torch.equal(cpu_linear.linear(x, cpu_linear.pack(w)), F.linear(x, w))


@needs_onednn
def test_cpu_backend_packs_float32_linears():
    backend = kernels.select_backend("cpu")
    assert backend.pack_linear is cpu_linear.pack and backend.linear is cpu_linear.linear
