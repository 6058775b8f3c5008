"""The project's own run of the tokenizer golden file (the conformance suite runs it case by case):
ElectraTokenizerFast reproduces every case the reference produced, and golden.json still matches what
its generator's corpus defines."""
from __future__ import annotations

from conformance.golden.tokenizer.check import check_case, load_golden
from conformance.golden.tokenizer.corpus import call_cases
from electra_core.tokenizer import ElectraTokenizerFast


def test_every_golden_case_matches_the_reference():
    failures = []
    for case in load_golden()["cases"]:
        try:
            check_case(ElectraTokenizerFast, case)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, f"{len(failures)} golden tokenizer cases differ:\n" + "\n".join(failures[:5])


def _inputs(case: dict) -> tuple:
    return (case["options"], case["method"], case["args"], case["kwargs"], case.get("result_kwargs"), case.get("select"))


def test_golden_file_holds_the_corpus_cases():
    stored = {c["id"]: _inputs(c) for c in load_golden()["cases"]}
    defined = {c["id"]: _inputs(c) for c in call_cases()}
    assert stored == defined, "golden.json is stale: rerun python conformance/golden/tokenizer/generate.py"


def test_golden_corpus_has_reference_errors_and_outputs():
    cases = load_golden()["cases"]
    assert any("error" in c for c in cases) and sum("expected" in c for c in cases) > 300
