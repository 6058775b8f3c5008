"""pyproject.toml declares what each part of the project imports.

Static (fast): for the base dependencies and each extra, the third-party top-level modules that the project
modules it is for import (found with ast, following the project's own imports) are provided by distributions
named in base + that extra (import name -> distribution: importlib.metadata.packages_distributions() of this
environment). A module must come from a distribution the extra names itself: one that a named distribution
merely requires does not count (an import is a direct dependency). GROUPS says what each extra is for; a
planted missing dependency in a fake pyproject makes the checker fail.

What counts:
- import time: every import executed when a module is imported (module level, not under ``if TYPE_CHECKING``
  nor in a ``try`` that catches ImportError), in the group's modules and in every project module they import
  that way; these must come from base + the group's extras.
- lazy (inside a function): in the group's own modules of an extra's group, the same (everything there runs
  with that extra installed). In the base packages a lazy import may run only on a framework's path
  (``return_tensors="tf"``, a TF-only conformance test): one of a module that conformance.registry names an
  extra for (the extra its missing-dependency message tells users to install) must come from that extra, any
  other from base.

Real (slow, ``-m slow``, ~80 s here): a fresh virtual environment gets ``pip install '.[tf]'`` and collects the
conformance suite for ``--impl tf`` without an import error.
"""
from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = "electra-conformance"
#: the project's own top-level packages (pyproject's packages.find include)
OWN_PACKAGES = ("spec", "electra_core", "impl_tf", "impl_flax", "conformance")
#: the packages whose modules every install has (their lazy imports may need any extra)
BASE_PACKAGES = ("spec", "electra_core", "conformance")
#: the golden-data generators of the PyTorch reference (torch, transformers), run with the [reference] extra
REFERENCE_TOOLS = ("conformance/golden/",)


@dataclass(frozen=True)
class Group:
    """What an install offers: ``roots`` (files or folders, relative to the repo) need base + ``extras``."""

    name: str
    extras: tuple[str, ...]
    roots: tuple[str, ...]
    exclude: tuple[str, ...] = ()


GROUPS = (
    Group("base", (), ("spec", "electra_core", "conformance"),
          exclude=("conformance/adapters/", "spec/measure/", *REFERENCE_TOOLS)),
    Group("tf", ("tf",), ("impl_tf", "conformance/adapters/ours_tf.py", "conformance/adapters/tf_common.py")),
    Group("flax", ("flax",), ("impl_flax", "conformance/adapters/ours_flax.py",
                              "conformance/adapters/flax_common.py")),
    # transformers' classes run on a framework: the hf adapters need their framework's extra beside [hf]
    Group("hf+tf", ("hf", "tf"), ("conformance/adapters/hf_common.py", "conformance/adapters/hf_tf.py")),
    Group("hf+flax", ("hf", "flax"), ("conformance/adapters/hf_common.py", "conformance/adapters/hf_flax.py")),
    Group("keras-hub", ("keras-hub",), ("conformance/adapters/keras_hub.py",)),
    Group("reference", ("reference",), REFERENCE_TOOLS),
    Group("test", ("test",), ("tests", "spec/measure")),
)
#: extras that only gather others plus tools run as commands (nothing of theirs is imported)
AGGREGATE_EXTRAS = {"dev": "the [test] extra plus the ruff linter"}


# -- the project's imports ------------------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    module: str  # dotted name as imported
    lazy: bool  # inside a function
    file: str  # importing file, relative to the repo
    line: int


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = [handler.type] if not isinstance(handler.type, ast.Tuple) else list(handler.type.elts)
    return handler.type is None or any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                                            "Exception", "BaseException")
                                       for n in names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=None)
def imports_of(path: Path, root: Path = REPO) -> list[Import]:
    """The imports of one file (absolute names; relative imports resolved), optional ones left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[Import] = []
    rel = str(path.relative_to(root))

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Try) and any(_catches_import_error(h) for h in child.handlers):
                for part in (child.orelse, child.finalbody):  # the body's imports are optional
                    for stmt in part:
                        visit_stmt(stmt, lazy)
                continue
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit_stmt(stmt, lazy)
                continue
            visit_stmt(child, lazy)

    def visit_stmt(child: ast.AST, lazy: bool) -> None:
        if isinstance(child, ast.Import):
            found.extend(Import(a.name, lazy, rel, child.lineno) for a in child.names)
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = package[:len(package) - (child.level - 1)]
                target = ".".join(base + ([child.module] if child.module else []))
            else:
                target = child.module or ""
            found.append(Import(target, lazy, rel, child.lineno))
            # ``from pkg import submodule`` imports pkg.submodule
            found.extend(Import(f"{target}.{a.name}", lazy, rel, child.lineno) for a in child.names if a.name != "*")
        else:
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def is_project_module(top: str, root: Path = REPO) -> bool:
    """A top-level name of the project: its packages, tests, or a helper module of tests/."""
    local = root / "tests" / top
    return top in (*OWN_PACKAGES, "tests") or local.with_suffix(".py").is_file() or (local / "__init__.py").is_file()


def module_file(name: str, root: Path = REPO) -> Path | None:
    """The project file of a dotted module name (None: not a project module, or an attribute). The helper
    modules of tests/ are imported by their plain names (pytest puts tests/ on sys.path)."""
    parts = name.split(".")
    if not is_project_module(parts[0], root):
        return None
    if parts[0] not in (*OWN_PACKAGES, "tests"):
        parts = ["tests", *parts]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(name: str, root: Path) -> list[Path]:
    """The __init__ files Python runs before ``name`` (its parent packages)."""
    parts = name.split(".")
    return [p for i in range(1, len(parts)) if (p := root.joinpath(*parts[:i], "__init__.py")).is_file()]


def _owned(rel: str, packages: tuple[str, ...]) -> bool:
    return rel.split("/")[0] in packages


def group_files(group: Group, root: Path = REPO) -> list[Path]:
    out = []
    for entry in group.roots:
        path = root / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        out += [f for f in files if not any(str(f.relative_to(root)).startswith(x) for x in group.exclude)]
    return out


@dataclass(frozen=True)
class Need:
    """A third-party top-level module a group needs, and what needs it."""

    top: str
    any_extra: bool  # a lazy import in a base package: on a framework's path when the module is one the
    # registry names an extra for (conformance.registry._EXTRA_OF_MODULE), which must then provide it
    where: str  # "file:line"


def third_party_needs(group: Group, root: Path = REPO) -> list[Need]:
    """The third-party imports of the group's modules, following project imports (see the module doc)."""
    own = {str(f.relative_to(root)) for f in group_files(group, root)}
    extra_group = bool(group.extras)
    queue = [root / f for f in sorted(own)]
    seen: set[Path] = set()
    needs: list[Need] = []
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        rel = str(path.relative_to(root))
        in_group = rel in own
        for imp in imports_of(path, root):
            if imp.lazy and not in_group:
                continue  # judged in the group that owns the module
            top = imp.module.split(".")[0]
            if is_project_module(top, root):
                target = module_file(imp.module, root)
                if target is None:
                    continue
                if imp.lazy and not extra_group and not _owned(str(target.relative_to(root)), BASE_PACKAGES):
                    continue  # a base module reaching into an implementation on its framework's path
                queue += [target, *_package_inits(imp.module, root)]
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                lazy_in_base = imp.lazy and not extra_group and _owned(rel, BASE_PACKAGES)
                needs.append(Need(top, lazy_in_base, f"{imp.file}:{imp.line}"))
    return needs


# -- pyproject's declarations ---------------------------------------------------------------------
def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def requirement(text: str) -> tuple[str, set[str]]:
    """(name, extras) of a PEP 508 requirement string."""
    found = _REQUIREMENT.match(text)
    if not found:
        raise ValueError(f"not a requirement: {text!r}")
    return found.group(1), {e.strip() for e in (found.group(2) or "").split(",") if e.strip()}


def declared(pyproject: dict, extras: tuple[str, ...]) -> set[str]:
    """Normalized distribution names of base + ``extras`` (self-references like project[hf] expanded)."""
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    names: set[str] = set()
    pending, done = [None, *extras], set()
    while pending:
        extra = pending.pop()
        if extra in done:
            continue
        done.add(extra)
        if extra is not None and extra not in optional:
            raise KeyError(f"pyproject has no extra {extra!r}")
        for text in (project.get("dependencies", []) if extra is None else optional[extra]):
            name, req_extras = requirement(text)
            if normalize(name) == normalize(project["name"]):
                pending += sorted(req_extras)
            else:
                names.add(normalize(name))
    return names


def distributions_of(top: str, mapping: dict[str, list[str]]) -> set[str]:
    return {normalize(d) for d in mapping.get(top, [])}


def missing_dependencies(pyproject: dict, groups=GROUPS, root: Path = REPO,
                         mapping: dict[str, list[str]] | None = None) -> list[str]:
    """One line per (group, module) that no declared distribution provides; empty when all are."""
    from conformance.registry import _EXTRA_OF_MODULE

    mapping = _distributions() if mapping is None else mapping
    problems = []
    for group in groups:
        reported = set()
        for need in third_party_needs(group, root):
            if need.top in reported:
                continue
            extras = group.extras
            if need.any_extra and need.top in _EXTRA_OF_MODULE:  # on a framework's path: that framework's extra
                extras = (_EXTRA_OF_MODULE[need.top][0],)
            provided_by = distributions_of(need.top, mapping)
            if not provided_by:
                problems.append(f"{group.name}: {need.top} (imported at {need.where}) is not installed here, so no "
                                f"distribution is known to provide it")
            elif not provided_by & declared(pyproject, extras):
                problems.append(f"{group.name}: {need.top} (imported at {need.where}) comes from "
                                f"{'/'.join(sorted(provided_by))}, which base{''.join(f' + [{e}]' for e in extras)} "
                                f"does not declare")
            else:
                continue
            reported.add(need.top)
    return problems


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def load_pyproject(root: Path = REPO) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


# -- tests ----------------------------------------------------------------------------------------
def test_every_extra_declares_what_its_modules_import():
    problems = missing_dependencies(load_pyproject())
    assert not problems, "pyproject.toml misses dependencies:\n" + "\n".join(problems)


def test_every_extra_says_what_it_is_for():
    """A new extra needs a group here (the modules it is for), or is an aggregate of others."""
    extras = set(load_pyproject()["project"].get("optional-dependencies", {}))
    covered = {e for g in GROUPS for e in g.extras} | set(AGGREGATE_EXTRAS)
    assert extras == covered, f"extras without a group: {sorted(extras - covered)}; groups of no extra: " \
                              f"{sorted(covered - extras)}"


def test_groups_follow_project_imports():
    """The checker sees through the project's own imports: the TF adapter reaches tensorflow, the base
    group reaches numpy through conformance.checks, the flax group optax through impl_flax.losses."""
    tops = {g.name: {n.top for n in third_party_needs(g)} for g in GROUPS}
    assert {"tensorflow"} <= tops["tf"] and {"jax", "flax", "optax"} <= tops["flax"]
    assert {"numpy", "yaml", "pytest", "hypothesis", "msgpack", "safetensors"} <= tops["base"]
    assert "transformers" in tops["hf+tf"] and "tf_keras" in tops["hf+tf"]
    lazy = {n.top for n in third_party_needs(GROUPS[0]) if n.any_extra}
    assert "tensorflow" in lazy  # a TF-only path of a base module: needs an extra, not base
    strict_base = {n.top for n in third_party_needs(GROUPS[0]) if not n.any_extra}
    assert not strict_base & {"tensorflow", "jax", "flax", "torch", "transformers"}, strict_base


@pytest.mark.parametrize("extra,dependency,group", [
    (None, "msgpack", "base"),  # electra_core.checkpoint.msgpack_io imports it at import time
    (None, "pyyaml", "base"),  # spec.loader
    (None, "jsonschema", "base"),  # spec.loader, inside a function
    ("tf", "h5py", "base"),  # electra_core.checkpoint.h5_io, inside a function: the registry names [tf] for it
    ("tf", "tensorflow", "tf"),
    ("flax", "optax", "flax"),  # impl_flax.losses
    ("hf", "tf-keras", "hf+tf"),
])
def test_a_planted_missing_dependency_is_found(extra, dependency, group):
    pyproject = load_pyproject()
    fake = {"project": dict(pyproject["project"],
                            **{"optional-dependencies": {k: list(v) for k, v in
                                                         pyproject["project"]["optional-dependencies"].items()}})}
    listed = fake["project"]["dependencies"] if extra is None else fake["project"]["optional-dependencies"][extra]
    kept = [r for r in listed if normalize(requirement(r)[0]) != normalize(dependency)]
    assert len(kept) == len(listed) - 1, f"{dependency} is not in {extra or 'base'}"
    listed[:] = kept
    problems = missing_dependencies(fake)
    assert any(p.startswith(f"{group}: ") and normalize(dependency) in p for p in problems), problems


def test_an_unknown_import_is_reported(tmp_path):
    """A module no installed distribution provides is a problem too (the mapping knows nothing of it)."""
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "__init__.py").write_text("import numpy\nimport not_a_real_module_xyz\n")
    pyproject = {"project": {"name": PROJECT, "dependencies": ["numpy"], "optional-dependencies": {}}}
    problems = missing_dependencies(pyproject, (Group("base", (), ("spec",)),), root=tmp_path)
    assert problems == ["base: not_a_real_module_xyz (imported at spec/__init__.py:2) is not installed here, so "
                        "no distribution is known to provide it"]


def test_optional_imports_are_not_needs(tmp_path):
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "try:\n    import optional_thing\nexcept ImportError:\n    optional_thing = None\n"
        "if TYPE_CHECKING:\n    import typing_only\n"
        "def f():\n    import lazy_thing\n"
        "from . import sub\n")
    (tmp_path / "spec" / "sub.py").write_text("import numpy as np\n")
    needs = third_party_needs(Group("base", (), ("spec/__init__.py",)), tmp_path)
    assert {(n.top, n.any_extra) for n in needs} == {("lazy_thing", True), ("numpy", False)}


# -- the real install -----------------------------------------------------------------------------
def _source_copy(dest: Path) -> None:
    """The files git would ship (tracked and untracked-but-not-ignored), copied to ``dest``: pip builds in
    the source tree, which must not be this checkout."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.mark.slow
def test_the_tf_extra_installs_and_collects_the_suite():
    """pip install '.[tf]' into a fresh venv, then collect the conformance suite for --impl tf there."""
    work = Path(tempfile.mkdtemp(prefix="electra-packaging-", dir="/tmp"))
    try:
        source, venv, cwd = work / "src", work / "venv", work / "run"
        source.mkdir()
        cwd.mkdir()
        _source_copy(source)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", PIP_DISABLE_PIP_VERSION_CHECK="1")
        python = str(venv / "bin" / "python")
        timings = {}

        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, env=env)
        timings["venv"] = time.monotonic() - start

        start = time.monotonic()
        install = subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", f"{source}[tf]"], cwd=cwd,
                                 env=env, capture_output=True, text=True, timeout=1500)
        timings["pip install '.[tf]'"] = time.monotonic() - start
        assert install.returncode == 0, \
            f"pip install '.[tf]' failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}"

        start = time.monotonic()
        collect = subprocess.run([python, "-m", "pytest", "--pyargs", "conformance", "--impl", "tf", "--collect-only",
                                  "-q", "-p", "no:cacheprovider"], cwd=cwd, env=env, capture_output=True, text=True,
                                 timeout=600)
        timings["collect"] = time.monotonic() - start
        output = collect.stdout + collect.stderr
        found = re.search(r"(\d+) tests? collected", output)
        print("timings (s):", {k: round(v, 1) for k, v in timings.items()},
              f"collected: {found.group(1) if found else 'none'}")
        assert collect.returncode == 0, f"collection failed (rc {collect.returncode}):\n{output[-5000:]}"
        assert not re.search(r"ImportError|ModuleNotFoundError|errors? during collection", output), output[-5000:]
        assert found and int(found.group(1)) > 0, output[-3000:]
        # the suite came from the install, not from a checkout on the path
        where = subprocess.run([python, "-c", "import conformance; print(conformance.__file__)"], cwd=cwd, env=env,
                               capture_output=True, text=True, check=True).stdout
        assert str(venv) in where, where
    finally:
        shutil.rmtree(work, ignore_errors=True)
