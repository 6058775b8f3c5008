"""Pinned stacks (compat/): the stack file, the lock files, the committed reports, the requirements that
decide which implementations a stack runs, and the merge and compat-matrix commands."""
from __future__ import annotations

import json

import pytest
from packaging.utils import canonicalize_name

from conformance import cli, registry, stacks
from conformance.report import read_report, validate_report

STACKS = stacks.load_stacks()
BASELINES = stacks.COMPAT_DIR.parent / "conformance" / "baselines"


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: s.name)
def test_committed_stack_report_is_a_valid_report_of_its_lock(stack):
    """Each stack's report validates against the report schema, covers every implementation the stack names
    (ran, or not run with the reason), and was made with exactly the releases its lock pins."""
    document = read_report(stack.report)
    validate_report(document)
    pins = stack.pins()
    infos = {i["name"]: i for i in document["run_info"]["implementations"]}
    not_run = {e["impl"]: e["reason"] for e in document["run_info"].get("not_run", [])}
    assert set(infos) | set(not_run) == set(stack.impls) and not set(infos) & set(not_run)
    assert infos, f"{stack.name}: no implementation ran"
    for name, info in infos.items():
        for package, installed in info["framework_versions"].items():
            assert pins.get(canonicalize_name(package)) == installed, (
                f"{stack.name}: {name} ran on {package} {installed}, the lock pins {pins.get(canonicalize_name(package))}")
    for name, reason in not_run.items():
        assert registry.unmet_requirements_in(name, pins), f"{stack.name}: {name} not run, yet its lock meets " \
                                                           f"its requirements ({reason})"
    assert document["run_info"]["profile"]["name"] == "ci" and not document["run_info"].get("narrowed")


def test_stack_file_is_checked(tmp_path):
    path = tmp_path / "stacks.yaml"
    path.write_text("stacks:\n  - {name: Old, title: t, why: w, impls: [hf-tf], isa_limit: none}\n")
    with pytest.raises(stacks.StackError, match="lower case"):
        stacks.load_stacks(path)
    path.write_text("stacks:\n  - {name: old, title: t, why: w, impls: [hf-tf], isa_limit: sse}\n")
    with pytest.raises(stacks.StackError, match="isa_limit must be avx or none"):
        stacks.load_stacks(path)
    path.write_text("stacks:\n  - {name: old, title: t, why: w, impls: [hf-tf], isa_limit: none}\n")
    (tmp_path / "old.lock").write_text("# pinned\nnumpy==1.26.4\ntransformers>=4\n")
    (only,) = stacks.load_stacks(path)
    with pytest.raises(stacks.StackError, match="'transformers>=4' is not 'name==version'"):
        only.pins()


def test_requirements_name_the_release_that_is_missing(monkeypatch):
    monkeypatch.setitem(registry.BUILTIN_REQUIREMENTS, "fake",
                        {"pytest": ">=999", "no-such-distribution-here": ">=1", "PyYAML": ">=5"})
    unmet = registry.unmet_requirements("fake")
    assert len(unmet) == 2
    assert unmet[0].startswith("pytest>=999 (installed: ") and unmet[1] == "no-such-distribution-here>=1 (not installed)"
    assert registry.unmet_requirements("module.path:Adapter") == []
    assert registry.unmet_requirements_in("tf", {"tensorflow": "2.15.1", "keras": "2.15.0", "h5py": "3.10.0"})
    assert not registry.unmet_requirements_in("hf-tf", {"transformers": "4.37.2", "tensorflow": "2.15.1"})


def test_run_refuses_when_no_named_implementation_can_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(registry.BUILTIN_REQUIREMENTS, "tf", {"tensorflow": ">=999"})
    assert cli.main(["run", "--impl", "tf", "--report", str(tmp_path / "r.json")]) == 2
    out = capsys.readouterr()
    assert "[tf] not run here: it needs tensorflow>=999 (installed: " in out.out
    assert "no implementation named can run" in out.err


def _small_report(impl: str, directory) -> tuple[str, int]:
    """The committed baseline of ``impl`` cut to its first 40 results (views recomputed), written to
    ``directory``: (path, number of results). Small, so that merging and validating take no time."""
    from conformance.report import by_clause, by_family, min_numeric_of, summarize

    document = read_report(BASELINES / f"{impl}.json")
    results = document["results"][:40]
    document.update(results=results, clauses=by_clause(results), families=by_family(results),
                    summary=summarize(results, min_numeric_of(document)))
    path = directory / f"{impl}.json"
    path.write_text(json.dumps(document))
    return str(path), len(results)


def test_merge_joins_implementations_and_refuses_the_same_one_twice(tmp_path, capsys):
    out = tmp_path / "merged.json"
    (tf, n_tf), (flax, n_flax) = _small_report("tf", tmp_path), _small_report("flax", tmp_path)
    assert cli.main(["merge", tf, flax, "-o", str(out)]) == 0
    merged = json.loads(out.read_text())
    validate_report(merged)
    counts = {impl: sum(r["impl"] == impl for r in merged["results"]) for impl in ("tf", "flax")}
    assert counts == {"tf": n_tf, "flax": n_flax}
    assert cli.main(["merge", tf, tf, "-o", str(out)]) == 2
    assert "both hold results of 'tf'" in capsys.readouterr().err


def test_compat_matrix_renders_the_committed_stacks_in_order(tmp_path):
    page = tmp_path / "compat.md"
    assert cli.main(["compat-matrix", "-o", str(page)]) == 0
    text = page.read_text()
    positions = [text.index(f"### {a.name} -> {b.name}") for a, b in zip(STACKS, STACKS[1:])]
    assert positions == sorted(positions)
    for stack in STACKS:
        assert f"`bash scripts/compat.sh {stack.name}`" in text
    committed = stacks.COMPAT_DIR.parent / "docs" / "compat.md"
    assert committed.read_text() == text, "docs/compat.md is not the page of the committed reports: " \
                                          "run electra-conformance compat-matrix -o docs/compat.md"


@pytest.mark.parametrize("impl, extra", [("tf", "tf"), ("flax", "flax")])
def test_install_extras_ask_for_the_releases_our_adapters_require(impl, extra):
    """pyproject's extra installs nothing older than what the adapter requires to run (BUILTIN_REQUIREMENTS,
    the oldest releases a compat stack ran it on): the two never disagree on a lower bound."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((stacks.COMPAT_DIR.parent / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(r.name): r.specifier
                for r in map(Requirement, project["optional-dependencies"][extra])}
    for package, spec in registry.BUILTIN_REQUIREMENTS[impl].items():
        floors = {s.version for s in SpecifierSet(spec) if s.operator == ">="}
        assert floors <= {s.version for s in declared[canonicalize_name(package)] if s.operator == ">="}, \
            f"extra {extra!r}: {package} {declared[canonicalize_name(package)]}; the adapter requires {spec}"


def test_an_implementation_not_run_is_said_in_the_verdict_and_the_page():
    from conformance import render

    document = read_report(BASELINES / "flax.json")
    document["run_info"]["not_run"] = [{"impl": "tf", "reason": "needs tensorflow>=2.18 (installed: 2.15.1)"}]
    validate_report(document)
    assert "tf: NOT RUN in this environment: it needs tensorflow>=2.18 (installed: 2.15.1)" in render.matrix_lines(document)
    assert "- not run here: tf (it needs tensorflow>=2.18 (installed: 2.15.1))" in render.markdown(document)
