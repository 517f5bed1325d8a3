"""The C kernels (kernels/cpu_native.py): decode attention against the dense oracle and the
torch path, through the CPU backend's paged_attention (mixed decode + prefill batches too), and
the fused SiLU-and-multiply against torch."""
import functools

import pytest
import torch
import torch.nn.functional as F

from kernels import cpu_native
from kernels import reference as ref
from test_attention import dense_oracle, make_batch

pytestmark = pytest.mark.skipif(cpu_native.load() is None, reason="no C compiler (torch path only)")

BATCHES = [
    ([1, 1, 1, 1], [1, 8, 9, 37]),
    ([5, 1, 20, 1], [5, 17, 29, 64]),
    ([1] * 9, [3, 100, 17, 16, 15, 1, 64, 65, 200]),
]


@pytest.mark.parametrize("g", [1, 3, 4, 7])
@pytest.mark.parametrize("window", [None, 6])
@pytest.mark.parametrize("shape", BATCHES, ids=["decode", "mixed", "decode9"])
@pytest.mark.parametrize("d", [32, 12], ids=["simd", "plain"])  # 12: not a multiple of 8
def test_c_decode_rows_match_oracle_and_torch_path(g, window, shape, d):
    q_lens, seq_lens = shape
    q, kc, vc, qsl, lens, tables, seqs = make_batch(7, q_lens, seq_lens, hkv=2, g=g, d=d, num_blocks=256)
    scale = q.shape[-1] ** -0.5
    fast = functools.partial(ref.paged_attention, decode_fn=cpu_native.decode_fn)
    kw = {"sliding_window": window, "max_query_len": max(q_lens)}
    got = fast(q, kc, vc, qsl, lens, tables, scale, **kw)
    torch_path = ref.paged_attention(q, kc, vc, qsl, lens, tables, scale, **kw)
    assert (got - torch_path).abs().max() < 1e-5
    for b, (k, v) in enumerate(seqs):
        rows = slice(int(qsl[b]), int(qsl[b + 1]))
        want = dense_oracle(q[rows], k, v, q_lens[b], scale, window)
        assert (got[rows] - want).abs().max() < 1e-5


def test_decode_fn_declines_what_it_does_not_cover():
    q, kc, vc, qsl, lens, tables, _ = make_batch(1, [1, 1], [4, 9], hkv=2, g=2)
    assert cpu_native.decode_fn(q.double(), kc.double(), vc.double(), tables, lens.long(), 1.0, None, 9) is None


def test_cpu_backend_routes_decode_through_the_c_kernel():
    import kernels

    backend = kernels.select_backend("cpu")
    assert isinstance(backend.paged_attention, functools.partial)
    assert backend.paged_attention.keywords["decode_fn"] is cpu_native.decode_fn


def test_loading_the_kernel_keeps_subnormal_floats():
    """-ffast-math would set flush-to-zero for the whole process when the library loads."""
    import numpy as np

    cpu_native.load()
    tiny = np.float32(1e-38)
    assert tiny / np.float32(1e4) > 0  # a subnormal, not flushed to zero
    assert float(torch.tensor(1e-38) / 1e4) > 0


@pytest.mark.parametrize("t, i", [(1, 8), (5, 13), (64, 1536), (300, 40)])
def test_silu_mul_matches_torch(t, i):
    gu = torch.randn(t, 2 * i, generator=torch.Generator().manual_seed(t)) * 6  # tails of exp too
    gu[0, :2] = torch.tensor([-200.0, 200.0])  # beyond the exp clamp: silu -> 0 and -> x
    want = ref.silu_mul(gu)
    got = cpu_native.silu_mul(gu)
    assert got.shape == (t, i) and got.is_contiguous()
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_silu_mul_falls_back_for_views_and_other_dtypes():
    gu = torch.randn(6, 20)
    assert torch.equal(cpu_native.silu_mul(gu.double()), ref.silu_mul(gu.double()))
    view = torch.randn(6, 40)[:, ::2]  # not contiguous
    assert torch.equal(cpu_native.silu_mul(view), ref.silu_mul(view))


def test_cpu_backend_routes_silu_mul_through_c():
    import kernels

    assert kernels.select_backend("cpu").silu_mul is cpu_native.silu_mul


@pytest.mark.parametrize("t, h, with_residual", [(1, 8, True), (64, 576, True), (300, 576, False), (7, 33, True)])
def test_add_rms_norm_matches_torch(t, h, with_residual):
    gen = torch.Generator().manual_seed(t + h)
    x = torch.randn(t, h, generator=gen) * 3
    res = torch.randn(t, h, generator=gen) if with_residual else None
    w = torch.randn(h, generator=gen)
    want_sum, want = ref.add_rms_norm(x, res, w, 1e-5)
    got_sum, got = cpu_native.add_rms_norm(x, res, w, 1e-5)
    assert torch.equal(got_sum, want_sum)  # one float add, the same in both
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    assert (got - F.rms_norm(x if res is None else x + res, (h,), w, 1e-5)).abs().max() < 1e-5


def test_add_rms_norm_falls_back_for_views_and_other_dtypes():
    x, w = torch.randn(6, 40), torch.randn(20)
    view = x[:, ::2]
    assert all(torch.equal(a, b) for a, b in zip(cpu_native.add_rms_norm(view, None, w, 1e-6),
                                                 ref.add_rms_norm(view, None, w, 1e-6)))
    xd = torch.randn(3, 20, dtype=torch.float64)
    got = cpu_native.add_rms_norm(xd, xd, w.double(), 1e-6)
    assert got[1].dtype == torch.float64 and torch.equal(got[1], ref.add_rms_norm(xd, xd, w.double(), 1e-6)[1])
    assert kernels_backend().add_rms_norm is cpu_native.add_rms_norm


@pytest.mark.parametrize("t, hq, hkv, d", [(1, 9, 3, 64), (37, 4, 2, 16), (300, 9, 3, 64)])
def test_rope_write_kv_matches_torch(t, hq, hkv, d):
    gen = torch.Generator().manual_seed(t + hq)
    qkv = torch.randn(t, (hq + 2 * hkv) * d, generator=gen)
    table = torch.randn(512, d, generator=gen)
    positions = torch.randint(0, 512, (t,), generator=gen)
    nb, bs = 40, 16
    slots = torch.randperm(nb * bs, generator=gen)[:t]
    slots[::7] = -1  # padding rows: never written
    caches = [[torch.randn(nb, bs, hkv, d, generator=gen) for _ in range(2)] for _ in range(2)]
    caches[1] = [c.clone() for c in caches[0]]
    want = ref.rope_write_kv(qkv, hq, hkv, table, positions, *caches[0], slots)
    got = cpu_native.rope_write_kv(qkv, hq, hkv, table, positions, *caches[1], slots)
    assert got.shape == (t, hq, d)
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-5)
    assert torch.allclose(caches[1][0], caches[0][0], rtol=1e-6, atol=1e-5)  # rotated keys, same slots
    assert torch.equal(caches[1][1], caches[0][1])  # values copied as they are
    assert kernels_backend().rope_write_kv is cpu_native.rope_write_kv


def kernels_backend():
    import kernels

    return kernels.select_backend("cpu")


@pytest.mark.parametrize("b, v, pad", [(1, 5, 0), (3, 70, 0), (64, 49152, 0), (4, 1000, 37)])
def test_apply_bitmask_matches_the_torch_bias(b, v, pad):
    gen = torch.Generator().manual_seed(v)
    logits = torch.randn(b, v + pad, generator=gen)  # padded vocabulary: strided rows
    raw = logits[:, :v]
    words = (v + 31) // 32
    bits = torch.randint(-2**31, 2**31 - 1, (b, words + 2), generator=gen, dtype=torch.int32)[:, :words]
    want = ref.apply_bitmask(raw, bits, v)
    got = cpu_native.apply_bitmask(raw, bits, v, torch.empty(b, v))
    assert torch.equal(got, want)  # the same values, -inf included


def test_cpu_backend_samples_with_the_c_mask():
    import kernels

    assert kernels.select_backend("cpu").sample.keywords["apply_mask"] is cpu_native.apply_bitmask
