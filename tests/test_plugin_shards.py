"""One implementation's run split over shards (--conformance-shard i/n, merged by `electra-conformance
merge`) and over pytest-xdist workers (-n N, joined by the controller): the merged report holds the same
content as one process's, but for conformance.shards.PROCESS_FIELDS (pytester, fake adapter)."""
from __future__ import annotations

import json

import pytest
from plugin_support import SUITE, make_suite, run_suite

from conformance import cli
from conformance.report import validate_report
from conformance.shards import PROCESS_FIELDS, ShardError, comparable, merge_shards, parse_shard, shard_of

#: the fake suite plus an expected failure, an unexpected one, parametrized tests and a second family
SHARD_SUITE = SUITE + '''

def test_broken(adapter, device, check):
    check.equal(1, 2, clause="fake.broken", what="the answer")

def test_wrong(adapter, device, check):
    check.equal("a", "b", clause="fake.wrong", what="the letter")

@pytest.mark.parametrize("n", range(5))
def test_many(adapter, device, check, model_cache, n):
    handle = model_cache.get("FakeModel", {"hidden_size": 4, "hidden_act": ["gelu", "relu", "silu"][n % 3]})
    out = model_cache.run(handle, {"x": np.arange(float(n + 1))})
    check.allclose(out.fields["y"], 2.0 * np.arange(float(n + 1)), clause="fake.many", kind="golden", field="y")
'''
OTHER = '''
import pytest

@pytest.mark.family("other")
@pytest.mark.parametrize("k", ["a", "b", "c"])
def test_other(adapter, device, class_name, check, k):
    check.that(k in "abc", clause="fake.other", message=f"{class_name} {k}")
'''
EXPECTATIONS = '''implementation: fake
expected_failures:
  - clause: fake.broken
    test: test_broken
    reason: "returns 1; the spec says 2"
  - clause: fake.gone
    test: test_removed_long_ago
    reason: "a test that no longer exists"
'''


@pytest.fixture(scope="module", autouse=True)
def _imported_once():
    """Import hypothesis and read the spec here: pytester's in-process runs drop the modules a run imports,
    and these tests make dozens of runs."""
    import hypothesis  # noqa: F401
    from spec import load_spec

    load_spec()


@pytest.fixture
def suite(pytester, monkeypatch):
    make_suite(pytester, SHARD_SUITE)
    pytester.makepyfile(test_other=OTHER)
    (pytester.path / "expect.yaml").write_text(EXPECTATIONS)
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))  # xdist's workers import the fake adapter
    return pytester


def run(pytester, *args, report="r.json"):
    return run_suite(pytester, "--expectations", str(pytester.path / "expect.yaml"), *args, report=report)


def shard_runs(pytester, count: int, *args) -> list[dict]:
    docs = []
    for index in range(1, count + 1):
        result, doc = run(pytester, "--conformance-shard", f"{index}/{count}", *args, report=f"s{index}.json")
        assert doc is not None, result.stdout.str()
        docs.append(doc)
    return docs


def differences(a, b, path="") -> list[str]:
    """Where two documents differ (for the assertion message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in (differences(a[k], b[k], f"{path}/{k}") if k in a and k in b else [f"{path}/{k} in one only"])]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:120]} != {str(b)[:120]}"]


def assert_same_content(single: dict, other: dict) -> None:
    left, right = comparable(single), comparable(other)
    assert left == right, "\n".join(differences(left, right)[:20])


def test_shard_option_is_checked():
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/2"):
        with pytest.raises(ShardError, match="expected i/n"):
            parse_shard(bad)
    assert [shard_of(k, 3) for k in range(7)] == [1, 2, 3, 1, 2, 3, 1]


def test_a_bad_shard_option_is_a_usage_error(suite):
    result, doc = run(suite, "--conformance-shard", "3/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and doc is None
    assert "expected i/n" in result.stderr.str()


def collected(pytester, *args) -> list[str]:
    result = pytester.runpytest_inprocess("--impl", "fake_adapter:FakeAdapter", "-p", "no:cacheprovider",
                                          "--collect-only", "-q", *args)
    return [line for line in result.stdout.lines if "::" in line]


def test_shards_partition_the_selection_the_same_way_every_time(suite):
    everything = collected(suite)
    slices = [collected(suite, "--conformance-shard", f"{i}/3") for i in (1, 2, 3)]
    assert len(everything) == 22
    assert sorted(t for s in slices for t in s) == sorted(everything)  # every test in exactly one slice
    assert all(abs(len(s) - len(everything) / 3) < 1 for s in slices)  # round robin: balanced
    assert slices == [collected(suite, "--conformance-shard", f"{i}/3") for i in (1, 2, 3)]  # stable
    # a slice of what -k selected
    selected = collected(suite, "-k", "many or other")
    assert sorted(collected(suite, "-k", "many or other", "--conformance-shard", "1/2")
                  + collected(suite, "-k", "many or other", "--conformance-shard", "2/2")) == sorted(selected)


def test_a_shard_report_records_its_slice_and_is_narrowed(suite):
    result, doc = run(suite, "--conformance-shard", "2/3", report="s.json")
    validate_report(doc)
    shard = doc["run_info"]["shard"]
    assert (shard["index"], shard["count"], shard["selected"]) == (2, 3, 22)
    assert shard["positions"] == list(range(1, 22, 3)) == sorted(shard["positions"])
    assert len(doc["results"]) == 7
    assert any(r.startswith("shard 2/3") for r in doc["run_info"]["narrowed"])
    assert result.parseoutcomes()["deselected"] == 15


def test_merged_shards_hold_the_content_of_one_run(suite):
    result, single = run(suite)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # test_wrong
    shards = shard_runs(suite, 3)
    assert all(0 < len(s["results"]) < len(single["results"]) for s in shards)
    merged = merge_shards(list(reversed(shards)))  # in any order
    validate_report(merged)
    assert "shard" not in merged["run_info"] and merged["run_info"]["narrowed"] == single["run_info"]["narrowed"] == []
    assert [r["nodeid"] for r in merged["results"]] == [r["nodeid"] for r in single["results"]]
    assert {r["outcome"] for r in single["results"]} == {"passed", "failed", "xfailed", "skipped"}
    pairs = [s["coverage"]["pairs"]["fake"]["exercised"] for s in shards]
    assert 0 < max(pairs) < single["coverage"]["pairs"]["fake"]["exercised"]  # each shard drew some of them
    assert_same_content(single, merged)
    # a shard alone differs from the run in what was left out
    assert comparable(shards[0]) != comparable(single)
    assert set(PROCESS_FIELDS) == {"run_info", "results", "families", "family_cache"}


def test_merged_shards_of_a_narrowed_run_keep_its_narrowing(suite):
    _, single = run(suite, "-k", "many or other")
    merged = merge_shards(shard_runs(suite, 2, "-k", "many or other"))
    assert merged["run_info"]["narrowed"] == ["-k many or other"]
    assert_same_content(single, merged)


def test_the_merge_command_joins_shards_and_refuses_what_is_not_one_run(suite, capsys):
    _, single = run(suite)
    shards = shard_runs(suite, 3)
    paths = [str(suite.path / f"s{i}.json") for i in (1, 2, 3)]
    out = suite.path / "merged.json"
    assert cli.main(["merge", *paths, "-o", str(out)]) == 0
    assert_same_content(single, json.loads(out.read_text()))

    def refused(*given: str) -> str:
        capsys.readouterr()
        assert cli.main(["merge", *given, "-o", str(suite.path / "bad.json")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    assert "shard 2/3 of fake missing" in refused(paths[0], paths[2])
    assert "are both shard 1/3" in refused(paths[0], paths[0], paths[1], paths[2])
    run(suite, "--conformance-shard", "2/2", report="two.json")
    assert "mixed shard counts" in refused(paths[0], str(suite.path / "two.json"))
    run(suite, "--conformance-shard", "3/3", "--conformance-profile", "dev", report="dev.json")
    assert "differ in profile" in refused(paths[0], paths[1], str(suite.path / "dev.json"))
    run(suite, "--conformance-shard", "3/3", "-k", "not other", report="k.json")
    assert "differ in selection" in refused(paths[0], paths[1], str(suite.path / "k.json"))
    assert "both hold results of 'fake'" in refused(*paths, str(suite.path / "r.json"))
    assert not (suite.path / "bad.json").exists()
    with pytest.raises(ShardError, match="not a shard report"):
        merge_shards([shards[0], single])


def test_stale_expectations_are_those_stale_in_every_shard(suite):
    _, single = run(suite)
    shards = shard_runs(suite, 2)
    stale = [[e["clause"] for e in s["expectations"]["stale"]] for s in shards]
    assert stale == [["fake.broken", "fake.gone"], ["fake.gone"]]  # stale where test_broken did not run
    merged = merge_shards(shards)
    assert [e["clause"] for e in merged["expectations"]["stale"]] == ["fake.gone"]
    assert merged["expectations"]["stale"] == single["expectations"]["stale"]


def test_a_shard_fails_on_its_failures_but_not_on_the_verdict_of_the_whole(suite):
    # --min-numeric 6: the whole run has 5 reference comparisons (test_many) and is NOT VALIDATED; no shard
    # alone decides that. A shard without test_wrong passes; the one with it fails.
    result, single = run(suite, "--min-numeric", "6", "-k", "not wrong")
    assert result.ret == pytest.ExitCode.TESTS_FAILED and single["summary"]["validation"]["fake"]["verdict"] == \
        "NOT VALIDATED"
    codes = [run(suite, "--min-numeric", "6", "-k", "not wrong", "--conformance-shard", f"{i}/2",
                 report=f"v{i}.json")[0].ret for i in (1, 2)]
    assert codes == [0, 0]
    merged = merge_shards([json.loads((suite.path / f"v{i}.json").read_text()) for i in (1, 2)])
    assert merged["summary"]["validation"] == single["summary"]["validation"]


def test_xdist_workers_write_the_report_of_one_process(suite):
    pytest.importorskip("xdist")
    result, single = run(suite)
    progress = suite.path / "progress.jsonl"
    xresult, joined = run(suite, "-n", "2", "--conformance-progress", str(progress), report="x.json")
    assert xresult.ret == result.ret == pytest.ExitCode.TESTS_FAILED
    validate_report(joined)
    assert joined["run_info"]["workers"] == {"count": 2, "parts": 2}
    assert_same_content(single, joined)
    out = xresult.stdout.str()
    assert "ELECTRA conformance matrix" in out and "fake: NOT OK" in out
    events = [json.loads(line) for line in progress.read_text().splitlines()]
    assert events[0] == {"event": "collected", "total": 22}
    tests = [e for e in events if e["event"] == "test"]
    assert [e["done"] for e in tests] == list(range(1, 23)) and tests[-1]["failures"] == 1
    assert sorted(e["test"] for e in tests) == sorted(r["test_id"] for r in single["results"])


def test_a_shard_run_by_xdist_workers_merges_with_the_others(suite):
    pytest.importorskip("xdist")
    _, single = run(suite)
    _, first = run(suite, "--conformance-shard", "1/2", "-n", "2", report="x1.json")
    _, second = run(suite, "--conformance-shard", "2/2", report="x2.json")
    assert first["run_info"]["shard"]["positions"] == list(range(0, 22, 2))
    assert any(r.startswith("shard 1/2") for r in first["run_info"]["narrowed"])
    assert_same_content(single, merge_shards([first, second]))


def test_cli_run_with_workers(suite, capsys):
    pytest.importorskip("xdist")
    report = suite.path / "out" / "w.json"
    rc = cli.main(["run", "--impl", "fake_adapter:FakeAdapter", "--tests", str(suite.path), "--report", str(report),
                   "--expectations", str(suite.path / "expect.yaml"), "--min-numeric", "0", "--workers", "2",
                   "--compile-cache", "none", "--pytest-arg=-Wignore::pytest.PytestAssertRewriteWarning"])
    out = capsys.readouterr().out
    assert rc == 1, out  # test_wrong
    assert "-n 2 --dist load" in out and "[fake_adapter:FakeAdapter] 22/22 tests" in out
    doc = json.loads(report.read_text())
    assert doc["run_info"]["workers"]["count"] == 2
    _, single = run(suite, str(suite.path))
    doc["run_info"].pop("not_run")
    assert_same_content(single, doc)
    assert cli.main(["run", "--impl", "fake_adapter:FakeAdapter", "--workers", "0"]) == 2
    assert cli.main(["run", "--impl", "tf,flax", "--shard", "1/2"]) == 2
    assert "single --impl" in capsys.readouterr().err
