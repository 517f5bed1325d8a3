"""JSON Schema front end against public corpora: JSON-Schema-Test-Suite (draft 2020-12, required
part, all of it) and a fixed MaskBench sample. Instances are fed byte by byte through the
compiled matcher, in compact and default json.dumps form. Hard rule: no invalid instance is
ever accepted. Pass rates are printed and held above a floor (full MaskBench run:
benchmarks/maskbench_coverage.py)."""
import glob
import importlib.util
import json
import os
import random
from collections import Counter

import pytest

from grammar import GrammarError
from shared_data import data_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = data_path("json-schema-test-suite", "tests", "draft2020-12")
os.environ.setdefault("JSONSCHEMABENCH", data_path("jsonschemabench"))  # read by maskbench_coverage
_spec = importlib.util.spec_from_file_location("maskbench_coverage",
                                               os.path.join(ROOT, "benchmarks", "maskbench_coverage.py"))
mb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mb)


@pytest.mark.skipif(not os.path.isdir(SUITE), reason="JSON-Schema-Test-Suite data not present")
def test_json_schema_test_suite_draft2020_12():
    compiler = mb.byte_compiler()
    passed = total = invalid_accepted = 0
    bad = []
    for path in sorted(glob.glob(os.path.join(SUITE, "*.json"))):
        for group in json.load(open(path)):
            got = mb.check_schema(compiler, group["schema"], group["tests"], timeout_s=30)
            invalid_accepted += got["invalid_acc"]
            if got["invalid_acc"]:
                bad.append((os.path.basename(path), group["description"]))
            passed += got["valid_ok"] + got["invalid_rej"]
            total += len(group["tests"])
    print(f"\nJSON-Schema-Test-Suite draft2020-12 required: {passed}/{total} test cases pass")
    assert invalid_accepted == 0, bad
    assert passed >= 0.8 * total  # measured 1,094 of 1,299 (llguidance's published figure: 580 of 1,290)


MASKBENCH_SAMPLE = 4  # schemas per subset (fixed seed), among schemas under 6 kB of JSON: test budget


@pytest.mark.skipif(not os.path.isdir(mb.DATA), reason="JSONSchemaBench data not present")
def test_maskbench_sample_never_accepts_invalid():
    compiler = mb.byte_compiler()
    total = Counter()
    for name in mb.SUBSETS + mb.EXTRAS:
        rows = [r for r in mb.load_subset(name) if len(json.dumps(r[1])) < 6000]
        for sid, schema, tests in random.Random(0).sample(rows, min(MASKBENCH_SAMPLE, len(rows))):
            got = mb.check_schema(compiler, schema, tests, timeout_s=20)
            assert got["invalid_acc"] == 0, f"{name}/{sid}: an invalid instance was accepted"
            total += got
    valid = total["valid_ok"] + total["valid_rej"]
    print(f"\nMaskBench sample: valid {total['valid_ok']}/{valid}, invalid rejected {total['invalid_rej']}")
    assert total["valid_ok"] >= 0.6 * valid


def test_check_schema_counts_compile_errors_as_rejections():
    compiler = mb.byte_compiler()
    tests = [{"valid": True, "data": [1, 1]}, {"valid": False, "data": [1]}]
    got = mb.check_schema(compiler, {"type": "array", "uniqueItems": True}, tests)
    assert got["error"] == 1 and got["valid_rej"] == 1 and got["invalid_rej"] == 1
    with pytest.raises(GrammarError):
        compiler.compile_json_schema({"type": "array", "uniqueItems": True})


FORMATS_SUITE = data_path("json-schema-test-suite", "tests", "draft2020-12", "optional", "format")


@pytest.mark.skipif(not os.path.isdir(FORMATS_SUITE), reason="JSON-Schema-Test-Suite data not present")
def test_format_assertions_never_accept_an_invalid_string():
    """The suite's optional format tests (format as an assertion): every format we enforce is a
    subset of its RFC, so no invalid string is ever accepted; valid ones we cut are counted."""
    from grammar import GrammarCompiler, Vocabulary

    compiler = GrammarCompiler(Vocabulary([bytes([i]) for i in range(256)]))
    accepted_invalid, rejected_valid, checked = [], Counter(), 0
    for path in sorted(glob.glob(os.path.join(FORMATS_SUITE, "*.json"))):
        name = os.path.basename(path)[:-5]
        for group in json.load(open(path)):
            try:
                compiled = compiler.compile_json_schema(group["schema"])
            except GrammarError:
                assert name in ("idn-hostname", "regex", "ecmascript-regex"), name
                continue
            for test in group["tests"]:
                m = compiled.matcher()
                ok = m.accept_bytes(json.dumps(test["data"]).encode()) and m.can_terminate()
                checked += 1
                if ok and not test["valid"]:
                    accepted_invalid.append((name, test["data"]))
                rejected_valid[name] += not ok and test["valid"]
    print(f"\nformat assertions: {checked} strings, valid ones cut per format: {dict(+rejected_valid)}")
    assert checked > 500
    assert not accepted_invalid, accepted_invalid
