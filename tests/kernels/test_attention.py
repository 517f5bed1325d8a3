"""Paged attention and the KV write: Triton (TRITON_INTERPRET=1) and torch against a dense oracle."""
import pytest
import torch

from kernels import reference as ref


def dense_oracle(q, k_seq, v_seq, q_len, scale, window=None):
    """q [n, Hq, D] = the last n positions of a sequence whose keys are k_seq/v_seq [L, Hkv, D]."""
    _n, hq, _ = q.shape
    length, hkv, _ = k_seq.shape
    k = k_seq.repeat_interleave(hq // hkv, dim=1).double()  # [L, Hq, D]
    v = v_seq.repeat_interleave(hq // hkv, dim=1).double()
    s = torch.einsum("nhd,lhd->hnl", q.double(), k) * scale  # [Hq, n, L]
    qp = torch.arange(length - q_len, length)[:, None]
    kp = torch.arange(length)[None, :]
    vis = kp <= qp
    if window is not None:
        vis &= kp > qp - window
    s = s.masked_fill(~vis, float("-inf"))
    return torch.einsum("hnl,lhd->nhd", torch.softmax(s, -1), v).float()


def make_batch(seed, q_lens, seq_lens, hkv, g, d=32, page=8, num_blocks=64):
    """Random caches; each sequence gets random distinct blocks; its keys are written via write_kv."""
    gen = torch.Generator().manual_seed(seed)
    kc = torch.zeros(num_blocks, page, hkv, d)
    vc = torch.zeros(num_blocks, page, hkv, d)
    max_blocks = max((s + page - 1) // page for s in seq_lens)
    perm = torch.randperm(num_blocks, generator=gen)
    tables = perm[: len(seq_lens) * max_blocks].view(len(seq_lens), max_blocks).int()
    seqs = []
    for b, length in enumerate(seq_lens):
        k = torch.randn(length, hkv, d, generator=gen)
        v = torch.randn(length, hkv, d, generator=gen)
        pos = torch.arange(length)
        slots = tables[b, pos // page].long() * page + pos % page
        ref.write_kv(kc, vc, k, v, slots)
        seqs.append((k, v))
    qsl = torch.tensor([0] + q_lens).cumsum(0).int()
    q = torch.randn(int(qsl[-1]), hkv * g, d, generator=gen)
    return q, kc, vc, qsl, torch.tensor(seq_lens).int(), tables, seqs


# (q_lens, seq_lens): decode rows, lengths crossing 8-token pages, prefill with and without a cached prefix
BATCHES = [
    ([1, 1, 1, 1], [1, 8, 9, 37]),
    ([5, 1, 20, 1], [5, 17, 29, 64]),
]


@pytest.mark.parametrize("g", [1, 3, 4])
@pytest.mark.parametrize("window", [None, 6])
@pytest.mark.parametrize("shape", BATCHES, ids=["decode", "mixed"])
def test_paged_attention_matches_oracle(tri_attention, g, window, shape):
    q_lens, seq_lens = shape
    q, kc, vc, qsl, sl, bt, seqs = make_batch(g, q_lens, seq_lens, hkv=2, g=g)
    scale = 32**-0.5
    expected = torch.cat([
        dense_oracle(q[qsl[b] : qsl[b + 1]], k, v, q_lens[b], scale, window) for b, (k, v) in enumerate(seqs)
    ])
    got_ref = ref.paged_attention(q, kc, vc, qsl, sl, bt, scale, window)
    got_tri = tri_attention.paged_attention(q, kc, vc, qsl, sl, bt, scale, window)
    torch.testing.assert_close(got_ref, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(got_tri, got_ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("splits", [2, 4])
@pytest.mark.parametrize("window", [None, 20])
def test_split_kv_decode_matches_reference(tri_attention, splits, window):
    """Flash-decoding: keys split across programs and merged; a split may be empty (length 9)."""
    q, kc, vc, qsl, sl, bt, _ = make_batch(11, [1, 1, 1], [9, 70, 130], hkv=2, g=3, num_blocks=64)
    expected = ref.paged_attention(q, kc, vc, qsl, sl, bt, 0.3, window)
    got = tri_attention.paged_attention(q, kc, vc, qsl, sl, bt, 0.3, window, max_query_len=1, num_splits=splits)
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_chunked_prefill_equals_one_shot(tri_attention, impl):
    """A 45-token prompt prefilled in chunks 13 + 20 + 12 (each chunk attends to the cached prefix
    plus its own causal part) gives the one-shot prefill's output."""
    paged = ref.paged_attention if impl == "torch" else tri_attention.paged_attention
    q, kc, vc, qsl, sl, bt, _ = make_batch(5, [45], [45], hkv=1, g=4, page=4)
    whole = paged(q, kc, vc, qsl, sl, bt, 0.2)
    parts, start = [], 0
    for n in (13, 20, 12):
        start += n
        chunk_qsl = torch.tensor([0, n]).int()
        parts.append(paged(q[start - n : start], kc, vc, chunk_qsl, torch.tensor([start]).int(), bt, 0.2))
    torch.testing.assert_close(torch.cat(parts), whole, atol=1e-5, rtol=0)


def test_write_kv_matches_reference(tri_attention):
    gen = torch.Generator().manual_seed(0)
    kc = torch.randn(6, 4, 3, 16, generator=gen)
    vc = torch.randn(6, 4, 3, 16, generator=gen)
    k, v = torch.randn(5, 3, 16, generator=gen), torch.randn(5, 3, 16, generator=gen)
    slots = torch.tensor([0, 23, -1, 7, 12])
    kc2, vc2 = kc.clone(), vc.clone()
    ref.write_kv(kc, vc, k, v, slots)
    tri_attention.write_kv(kc2, vc2, k, v, slots)
    assert torch.equal(kc, kc2) and torch.equal(vc, vc2)
    assert torch.equal(kc.view(24, 3, 16)[23], k[1]) and torch.equal(vc.view(24, 3, 16)[7], v[3])


def test_triton_path_refuses_cpu_tensors_without_interpreter():
    from kernels.attention import check_launchable

    class FakeKernel:  # a compiled-mode kernel object
        __name__ = "k"

    with pytest.raises(RuntimeError, match="CUDA"):
        check_launchable(FakeKernel(), torch.zeros(1))


def test_reference_reuses_its_workspace_in_and_out_of_inference_mode():
    """The torch path gathers into reused per-thread buffers: a buffer first made under
    inference_mode (the engine) must stay writable outside it (tests, tools), and a second,
    larger batch must grow it without changing results."""
    small = make_batch(3, [1, 1], [9, 12], hkv=2, g=2)
    large = make_batch(4, [1, 7, 1], [40, 33, 61], hkv=2, g=2)
    with torch.inference_mode():
        first = ref.paged_attention(*small[:6], 0.3)
    torch.testing.assert_close(ref.paged_attention(*small[:6], 0.3), first, atol=0, rtol=0)
    q, kc, vc, qsl, sl, bt, seqs = large
    expected = torch.cat([dense_oracle(q[qsl[b] : qsl[b + 1]], k, v, int(qsl[b + 1] - qsl[b]), 0.3)
                          for b, (k, v) in enumerate(seqs)])
    torch.testing.assert_close(ref.paged_attention(q, kc, vc, qsl, sl, bt, 0.3), expected, atol=1e-4, rtol=0)
