"""scripts/mutation_equivalents.py: which surviving mutants an equivalent.yaml entry relabels (the cosmic-ray
session itself is exercised by scripts/mutation.sh, opt-in)."""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mutation_equivalents", ROOT / "scripts" / "mutation_equivalents.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

ENTRY = {"module": "pkg/heads.py", "operator": "core/NumberReplacer", "function": "__call__",
         "line": "return self.dense_prediction(x)[..., 0]", "mutated": "[..., -1]", "why": "size-1 axis"}
DIFF = ("--- a/pkg/heads.py\n+++ b/pkg/heads.py\n@@ -2 +2 @@\n-        return self.dense_prediction(x)[..., 0]\n"
        "+        return self.dense_prediction(x)[..., -1]\n")


@pytest.fixture
def module(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "heads.py").write_text("def f(x):\n        return self.dense_prediction(x)[..., 0]\n")
    monkeypatch.chdir(tmp_path)


def _mutation(**changes):
    values = dict(module_path="pkg/heads.py", operator_name="core/NumberReplacer", definition_name="__call__",
                  start_pos=(2, 45))
    values.update(changes)
    return SimpleNamespace(**values)


def test_an_entry_matches_its_mutant_only(module):
    assert tool._matches(ENTRY, _mutation(), SimpleNamespace(diff=DIFF), {})
    other_number = SimpleNamespace(diff=DIFF.replace("[..., -1]", "[..., 1]"))  # out of range: not equivalent
    assert not tool._matches(ENTRY, _mutation(), other_number, {})
    assert not tool._matches(ENTRY, _mutation(operator_name="core/AddNot"), SimpleNamespace(diff=DIFF), {})
    assert not tool._matches(ENTRY, _mutation(start_pos=(1, 0)), SimpleNamespace(diff=DIFF), {})  # another line
    assert not tool._matches(ENTRY, _mutation(definition_name="g"), SimpleNamespace(diff=DIFF), {})


def test_an_entry_without_its_reason_is_refused(tmp_path):
    path = tmp_path / "equivalent.yaml"
    path.write_text("equivalent:\n  - {module: a.py, operator: core/AddNot, line: x, mutated: y}\n")
    with pytest.raises(SystemExit, match="why"):
        tool._entries(path)


def test_the_committed_entries_are_well_formed():
    assert tool._entries(ROOT / "conformance" / "mutation" / "equivalent.yaml")


def test_the_script_refuses_a_path_outside_the_implementations():
    done = subprocess.run(["bash", str(ROOT / "scripts" / "mutation.sh"), "conformance/pairs.py"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not part of impl_flax, impl_tf or electra_core" in done.stderr
    done = subprocess.run(["bash", str(ROOT / "scripts" / "mutation.sh"), "--sample", "ten", "impl_tf"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--sample takes a number of mutants, not 'ten'" in done.stderr


ANNOTATED = '''from __future__ import annotations

LIMIT: int | None = 3


def f(name: str | None = None, *, size: int | None = 2) -> dict | None:
    return {name: size | 4}
'''


def _at(line, start, end):
    return SimpleNamespace(start_pos=(line, start), end_pos=(line, end))


def test_only_mutants_inside_postponed_annotations_are_set_aside():
    spans = tool.annotation_spans(ANNOTATED)
    line = ANNOTATED.splitlines()[5]
    for text in ("str | None", "int | None", "dict | None"):  # parameter, keyword-only, return annotations
        bar = line.index(text) + text.index("|")
        assert tool.in_annotation(_at(6, bar, bar + 1), spans), text
    bar = ANNOTATED.splitlines()[2].index("|")
    assert tool.in_annotation(_at(3, bar, bar + 1), spans)  # LIMIT's annotation
    body = ANNOTATED.splitlines()[6].index("|")
    assert not tool.in_annotation(_at(7, body, body + 1), spans)  # size | 4 runs: not an annotation
    value = ANNOTATED.splitlines()[2].index("3")
    assert not tool.in_annotation(_at(3, value, value + 1), spans)  # LIMIT's value
    default = line.index("= 2") + 2
    assert not tool.in_annotation(_at(6, default, default + 1), spans)  # a default is evaluated
    # without the __future__ import annotations are evaluated when the function is defined: none is set aside
    assert tool.annotation_spans(ANNOTATED.replace("from __future__ import annotations", "")) == []


def _session(path, places, outcomes=None):
    """A cosmic-ray session reduced to the two tables the sample draw reads and writes; ``places`` are
    (job id, module, operator, occurrence), ``outcomes`` {job id: output} of results already there."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("CREATE TABLE mutation_specs (job_id, module_path, operator_name, occurrence)")
    db.execute("CREATE TABLE work_results (worker_outcome, output, test_outcome, diff, job_id PRIMARY KEY)")
    db.executemany("INSERT INTO mutation_specs VALUES (?, ?, ?, ?)", places)
    db.executemany("INSERT INTO work_results (worker_outcome, output, test_outcome, job_id) VALUES (?, ?, ?, ?)",
                   [(kind, output, test, job) for job, (kind, output, test) in (outcomes or {}).items()])
    db.commit()
    return db


def _pending(db):
    return {row[0] for row in db.execute("SELECT s.job_id FROM mutation_specs s LEFT JOIN work_results r "
                                         "ON r.job_id = s.job_id WHERE r.job_id IS NULL")}


def test_a_sample_is_drawn_by_place_grows_without_losing_results_and_spares_equivalents(tmp_path):
    places = [(f"job{k}", f"pkg/m{k % 3}.py", "core/NumberReplacer", k) for k in range(12)]
    equivalent = {"job0": ("SKIPPED", tool.EQUIVALENT + "annotation", None)}
    db = _session(tmp_path / "a.sqlite", places, equivalent)
    assert tool.draw_sample(str(tmp_path / "a.sqlite"), 4) == (4, 7)  # 11 not equivalent: 4 in, 7 out
    first = _pending(db)
    assert len(first) == 4 and "job0" not in first
    # the same places under other job ids (a new cosmic-ray init of the same code) draw the same sample
    renamed = _session(tmp_path / "b.sqlite", [("x" + job, *rest) for job, *rest in places],
                       {"xjob0": equivalent["job0"]})
    tool.draw_sample(str(tmp_path / "b.sqlite"), 4)
    assert _pending(renamed) == {"x" + job for job in first}
    # one sampled mutant is run; a larger draw keeps it and the first sample, and adds three
    ran = sorted(first)[0]
    db.execute("INSERT INTO work_results (worker_outcome, test_outcome, job_id) VALUES ('NORMAL', 'KILLED', ?)",
               (ran,))
    db.commit()
    assert tool.draw_sample(str(tmp_path / "a.sqlite"), 7) == (7, 4)
    grown = _pending(db)
    assert first - {ran} < grown and len(grown) == 6
    assert db.execute("SELECT test_outcome FROM work_results WHERE job_id = ?", (ran,)).fetchone() == ("KILLED",)
    outside = db.execute("SELECT output FROM work_results WHERE output LIKE 'outside%'").fetchall()
    assert len(outside) == 4 and {o for (o,) in outside} == {tool.OUTSIDE + "7 of 11 drawn (seed 0)"}
    # all: nothing stays outside, and the equivalent stays set aside
    assert tool.draw_sample(str(tmp_path / "a.sqlite"), None) == (11, 0)
    assert _pending(db) == {job for job, *_ in places} - {"job0", ran}


def test_the_interval_of_a_sampled_kill_rate_is_wilsons():
    low, high = tool.wilson(9, 10)  # published: 0.596-0.982
    assert round(low, 3) == 0.596 and round(high, 3) == 0.982
    low, high = tool.wilson(0, 10)  # no kill in ten: up to 0.278
    assert low == 0.0 and round(high, 3) == 0.278
    assert tool.wilson(0, 0) == (0.0, 1.0)  # nothing run says nothing


def test_a_kill_counts_only_when_a_test_failed():
    # the test command's stamp after each pytest run (it collected on the unmutated code first, so any failure
    # is the mutant's): 1 failed tests, 2 a collection error, 4 the plugin's start, 134 an abort
    assert tool.a_test_failed("....F\n[mutation] pytest exit 1: conformance suite of tf\n")
    assert tool.a_test_failed("[mutation] pytest exit 0: conformance suite of flax\n[mutation] pytest exit 2: x\n")
    assert tool.a_test_failed("ERROR: --impl tf: capabilities() failed: SyntaxError\n[mutation] pytest exit 4: x\n")
    assert tool.a_test_failed("Fatal Python error: Aborted\n[mutation] pytest exit 134: x\n")
    assert not tool.a_test_failed("[mutation] pytest exit 0: conformance suite of tf\n")
    assert tool.a_test_failed("timeout")  # cosmic-ray's own word for a test command it had to stop
    # older sessions, without the stamp: pytest's summary must count a failure or an error
    assert tool.a_test_failed("1 failed, 686 passed, 138 skipped in 113.38s (0:01:53)\n")
    assert tool.a_test_failed("Interrupted: 1 error during collection\n")
    assert not tool.a_test_failed("\n")  # what a chained command line left: pytest's usage error went to stderr
    assert not tool.a_test_failed("0 failed, 3 passed in 1.0s\n")


def test_kills_of_the_unit_tests_are_told_from_the_suites():
    script = (ROOT / "scripts" / "mutation.sh").read_text()
    assert tool.UNIT_STAGE in script  # the test command prints the marker the score looks for
    suite_kill = "[mutation] stage: conformance suite of tf\n1 failed\n[mutation] pytest exit 1: conformance suite\n"
    unit_kill = ("[mutation] pytest exit 0: conformance suite of tf\n" + tool.UNIT_STAGE +
                 "\n1 failed\n[mutation] pytest exit 1: unit tests\n")
    assert not tool.killed_by_unit_tests_only(suite_kill) and tool.killed_by_unit_tests_only(unit_kill)


def test_results_that_ran_no_test_are_run_again(tmp_path):
    places = [(f"job{k}", "pkg/m.py", "core/NumberReplacer", k) for k in range(4)]
    db = _session(tmp_path / "a.sqlite", places, {
        "job0": ("NORMAL", "\n", "KILLED"),  # an old kill without a failing test
        "job1": ("NORMAL", "2 failed in 3.0s\n", "KILLED"),
        "job2": ("NORMAL", tool.NOT_RUN + "ERROR: usage", "INCOMPETENT"),
        "job3": ("NORMAL", "5 passed in 1.0s\n", "SURVIVED")})
    assert tool.retry_unrun(str(tmp_path / "a.sqlite")) == 2
    assert _pending(db) == {"job0", "job2"}
