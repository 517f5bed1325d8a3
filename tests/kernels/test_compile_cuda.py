"""Compile every Triton kernel for an H100 (sm_90) on this GPU-less machine.

The interpreter is lenient about types (loop-carried scalars, mixed int widths); the real
compiler is not. Compiling to a cubin needs no GPU, so the kernels' compiled-mode validity is
checked here. Runs in a subprocess because this package's conftest turns the interpreter on.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import kernels.attention as A, kernels.sampling as S

    def comp(fn, sig, consts):
        kernel = triton.compile(ASTSource(fn, sig, consts), target=GPUTarget("cuda", 90, 32))
        assert "cubin" in kernel.asm, fn.__name__

    names = ["logits_ptr", "stride_l", "mask_ptr", "stride_m", "inv_temp_ptr", "top_p_ptr", "top_k_ptr",
             "min_p_ptr", "seed_ptr", "pos_ptr", "tok_ptr", "V"]
    types = ["*fp32", "i32", "*i32", "i32", "*fp32", "*fp32", "*i32", "*fp32", "*i64", "*i64", "*i64", "i32"]
    flags = ["HAS_MASK", "SAMPLE", "MIN_P", "TOP_K", "TOP_P"]
    sig = dict(zip(names, types), BLOCK="constexpr", **{f: "constexpr" for f in flags})
    for on in (False, True):
        comp(S._sample_kernel, sig, dict(BLOCK=1024, **{f: on for f in flags}))
    names = ["q_ptr", "k_ptr", "v_ptr", "o_ptr", "qsl_ptr", "seq_lens_ptr", "bt_ptr", "part_ptr", "part_ml_ptr", "stride_qt",
             "stride_qh", "stride_ot", "stride_oh", "stride_kb", "stride_ks", "stride_kh", "stride_bt",
             "scale", "window", "G", "D", "page"]
    for dt, prec in (("bf16", "tf32"), ("fp32", "ieee")):
        types = ["*" + dt] * 4 + ["*i32"] * 3 + ["*fp32"] * 2 + ["i32"] * 8 + ["fp32"] + ["i32"] * 4
        sig = dict(zip(names, types), **{c: "constexpr" for c in
                   ["BLOCK_Q", "G_PAD", "BLOCK_N", "BLOCK_D", "HAS_WINDOW", "PRECISION", "SPLITS"]})
        for window, splits in ((False, 1), (True, 4)):
            comp(A._paged_attn_kernel, sig, dict(BLOCK_Q=4, G_PAD=4, BLOCK_N=64, BLOCK_D=64,
                                                 HAS_WINDOW=window, PRECISION=prec, SPLITS=splits))
        sig = dict(part_ptr="*fp32", part_ml_ptr="*fp32", o_ptr="*" + dt, qsl_ptr="*i32", stride_ot="i32",
                   stride_oh="i32", G="i32", D="i32", SPLITS="constexpr", G_PAD="constexpr", BLOCK_D="constexpr")
        comp(A._combine_splits_kernel, sig, dict(SPLITS=8, G_PAD=4, BLOCK_D=128))
    sig = dict(k_ptr="*bf16", v_ptr="*bf16", kc_ptr="*bf16", vc_ptr="*bf16", slot_ptr="*i64",
               stride_t="i32", stride_slot="i32", HD="i32", BLOCK="constexpr")
    comp(A._write_kv_kernel, sig, dict(BLOCK=256))
    print("compiled")
    """
)


def test_kernels_compile_for_sm90():
    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=170, check=False)
    if "ptxas" in proc.stderr and "not found" in proc.stderr.lower():
        pytest.skip("triton's bundled ptxas is unavailable")
    assert proc.returncode == 0 and "compiled" in proc.stdout, proc.stderr[-3000:]
