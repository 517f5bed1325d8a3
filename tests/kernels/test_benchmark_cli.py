"""benchmarks/kernels_gpu.py: importable, its plan and argument handling run without a GPU."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "kernels_gpu.py"


def _load():
    spec = importlib.util.spec_from_file_location("kernels_gpu", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["kernels_gpu"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_plan_and_cli(capsys):
    bench = _load()
    full = bench.plan({"sampling", "attention"}, quick=False)
    sizes = {c.size for c in full if c.kind == "sampling"}
    assert sizes == {32_000, 128_256, 151_936}
    assert {c.batch for c in full if c.kind == "sampling"} == {1, 4, 16, 64, 256}
    assert {c.size for c in full if c.kind == "attention"} == {1024, 2048, 4096, 8192, 16384, 32768}
    assert bench.main(["--dry-run", "--quick", "--what", "attention"]) == 0
    assert "attention" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--what", "bogus"])
    if not torch.cuda.is_available():
        assert bench.main(["--quick"]) == 2
