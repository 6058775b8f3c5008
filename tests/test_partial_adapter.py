"""The suite against a deliberately partial third-party adapter (tests/partial_adapter.py): a bare encoder
with a keyword call on input_ids and attention_mask, returning last_hidden_state only.

The numeric families that apply to a bare encoder (test_numerics' golden cases, test_architecture's
float64 NumPy model) run in-process on it. The clean adapter must come out OK, validated by comparisons
with the reference, every test it cannot run skipped as "not supported by partial: <feature>", and no test
asking it for a feature it did not declare (its run raises TypeError then, and records the request).
The faulty variant (LayerNorm epsilon ignored) must come out NOT OK under a numeric clause.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("flax")

REPO = Path(__file__).resolve().parents[1]
#: the families that compare a bare encoder with the reference; the cross-framework comparison is left out
#: (it needs this project's TF adapter, and compares with our other implementation, not the reference)
MODULES = ("conformance.tests.test_numerics", "conformance.tests.test_architecture")
SELECTION = "not test_matches_other_framework"
#: golden cases a non-decoder encoder without cross-attention must skip as not supported
DECODER_CASES = ("decoder.ElectraModel", "cross_attention.ElectraModel")
#: clauses a numeric comparison with the reference fails under: the golden outputs, the float64 NumPy model
#: (architecture.*), or the config field whose other reading explains the output far better (the NumPy
#: model's blame_alternative names ElectraConfig.field.layer_norm_eps for an ignored epsilon)
NUMERIC_CLAUSES = ("behaviour.golden", "architecture.", "ElectraConfig.field.layer_norm_eps")


@pytest.fixture(scope="module", autouse=True)
def _imported_once():
    """Import what the in-process runs use, so that pytester's sys.modules snapshot keeps one copy of each
    (and the adapter module whose ``UNDECLARED_REQUESTS`` this file reads is the one the suite drives)."""
    import importlib
    import sys

    sys.path.insert(0, str(REPO))
    for name in ("hypothesis.strategies", "hypothesis.extra.numpy", "conformance.plugin", "conformance.strategies",
                 "tests.partial_adapter", "impl_flax"):
        importlib.import_module(name)
    yield
    sys.path.remove(str(REPO))


def run_partial(pytester, adapter: str) -> tuple[dict, list, float]:
    """Run the selected families on ``tests.partial_adapter:<adapter>``: (report, the undeclared features
    the suite asked for, seconds)."""
    from tests import partial_adapter

    partial_adapter.UNDECLARED_REQUESTS.clear()
    report = pytester.path / "report.json"
    start = time.monotonic()
    pytester.runpytest("-p", "no:cacheprovider", "--pyargs", *MODULES, "--impl", f"tests.partial_adapter:{adapter}",
                       "--devices", "cpu", "--dtypes", "float32", "--conformance-profile", "ci",
                       "--expectations", "none", "--min-numeric", "1", "-k", SELECTION,
                       "--conformance-report", str(report))
    seconds = time.monotonic() - start
    assert report.exists(), f"{adapter}: the conformance run wrote no report"
    return json.loads(report.read_text(encoding="utf-8")), list(partial_adapter.UNDECLARED_REQUESTS), seconds


def _skip_reason(result: dict) -> str:
    return result["message"].removeprefix("Skipped: ").strip()


def _assert_nothing_undeclared_requested(report: dict, requests: list) -> None:
    assert not requests, "suite tests asked the partial adapter for features it did not declare:\n" + "\n".join(
        f"  {r}" for r in requests)
    leaked = [r["test_id"] for r in report["results"] if "not declared by the partial encoder" in r["message"]]
    assert not leaked, f"tests that met the adapter's refusal of an undeclared feature: {leaked}"


def test_partial_encoder_is_validated_and_skips_what_it_lacks(pytester):
    report, requests, seconds = run_partial(pytester, "PartialEncoderAdapter")
    print(f"partial: {seconds:.1f} s")
    results = [r for r in report["results"] if r["impl"] == "partial"]
    assert results, "no test ran against the partial adapter"
    _assert_nothing_undeclared_requested(report, requests)
    failed = [(r["test_id"], r["failed_clauses"], r["message"][:300]) for r in results
              if r["outcome"] in ("failed", "unexpected_pass")]
    assert not failed, f"the clean partial encoder failed: {failed}"
    verdict = report["summary"]["validation"]["partial"]
    assert verdict["verdict"] == "OK", verdict
    assert verdict["reference_comparisons"] > 0, verdict
    # the golden case of the barest encoder (ids and mask only) compares it with PyTorch's outputs
    golden = [r for r in results if r["test"] == "test_matches_golden[core_ids_mask.ElectraModel]"]
    assert [r["outcome"] for r in golden] == ["passed"], [(r["test_id"], r["message"][:200]) for r in golden]
    assert any(m["kind"] == "golden" and m["clause"] == "behaviour.golden" for m in golden[0]["measurements"])
    # a feature it lacks is named as such, in the report's table and in each skip
    assert verdict["unsupported"] and all(k.startswith("not supported by partial: ") for k in verdict["unsupported"])
    for case in DECODER_CASES:
        skipped = [r for r in results if case in r["test_id"]]
        assert skipped, f"no test of the golden case {case}"
        for r in skipped:
            assert r["outcome"] == "skipped", f"{r['test_id']}: {r['outcome']} ({r['message'][:200]})"
            assert _skip_reason(r).startswith("not supported by partial: "), f"{r['test_id']}: {_skip_reason(r)}"
    other_classes = [r for r in results if r["class_name"] not in (None, "FlaxElectraModel")]
    assert all(_skip_reason(r).startswith("not supported by partial: class ") for r in other_classes), \
        [(r["test_id"], _skip_reason(r)) for r in other_classes if "not supported by partial" not in r["message"]]
    # every golden case it cannot run names what it lacks (another class, a config value, an input)
    golden_skips = [r for r in results if r["family"] == "numerics" and r["outcome"] == "skipped"]
    assert all(_skip_reason(r).startswith("not supported by partial: ") for r in golden_skips), \
        [(r["test_id"], _skip_reason(r)) for r in golden_skips if "not supported by partial" not in r["message"]]


def test_faulty_partial_encoder_is_caught_by_a_numeric_clause(pytester):
    report, requests, seconds = run_partial(pytester, "FaultyPartialEncoderAdapter")
    print(f"partial-faulty: {seconds:.1f} s")
    _assert_nothing_undeclared_requested(report, requests)
    verdict = report["summary"]["validation"]["partial-faulty"]
    assert verdict["verdict"] == "NOT OK", verdict
    assert not report["summary"]["ok"]
    caught = {(r["test_id"], c) for r in report["results"] if r["impl"] == "partial-faulty"
              and r["outcome"] == "failed" and r["family"] in ("numerics", "architecture")
              for c in r["failed_clauses"] if c.startswith(NUMERIC_CLAUSES)}
    print("caught by:", sorted(caught))
    assert caught, "the ignored layer_norm_eps failed no numeric clause: " + str(
        [(r["test_id"], r["failed_clauses"]) for r in report["results"] if r["outcome"] == "failed"])
