"""Pinned software stacks (``compat/stacks.yaml``): the releases of transformers, TensorFlow, JAX and Flax
the suite is run on to track what changes between them, in the order they were released.

Each stack has a lock file ``compat/<name>.lock`` (every distribution pinned, installed with --no-deps so
the pins are exact), the implementations it runs, the instruction-set limit its XLA supports, and a
committed report ``compat/reports/<name>.json.gz`` (gzip: a report of four implementations is ~7 MB of
JSON, 0.4 MB compressed). ``bash scripts/compat.sh NAME`` rebuilds and reruns one;
``electra-conformance compat-matrix`` renders docs/compat.md from the committed reports.
Command line (used by scripts/compat.sh): ``python -m conformance.stacks NAME FIELD``.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name

COMPAT_DIR = Path(__file__).resolve().parents[1] / "compat"
_NAME = re.compile(r"[a-z][a-z0-9-]*")
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


class StackError(ValueError):
    pass


@dataclass(frozen=True)
class Stack:
    name: str
    title: str
    why: str
    impls: tuple[str, ...]
    isa_limit: str  # avx | none (scripts/_kernels.sh)
    lock: Path
    report: Path

    def pins(self) -> dict[str, str]:
        """{distribution name (canonical: lower case, '-'): version} of the lock file."""
        pins = {}
        for line in self.lock.read_text(encoding="utf-8").splitlines():
            line = line.split("#")[0].strip()
            if not line:
                continue
            match = _PIN.fullmatch(line)
            if not match:
                raise StackError(f"{self.lock}: {line!r} is not 'name==version' (a lock pins every distribution)")
            pins[canonicalize_name(match[1])] = match[2]
        return pins


def load_stacks(path: Path | None = None) -> list[Stack]:
    path = path or COMPAT_DIR / "stacks.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = raw.get("stacks") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise StackError(f"{path}: 'stacks' must be a non-empty list")
    stacks = []
    for i, entry in enumerate(entries):
        where = f"{path}: stacks[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "title", "why", "impls", "isa_limit"}:
            raise StackError(f"{where} must have exactly name, title, why, impls, isa_limit")
        if not _NAME.fullmatch(str(entry["name"])):
            raise StackError(f"{where}: name {entry['name']!r} must be lower case letters, digits and '-'")
        if entry["isa_limit"] not in ("avx", "none"):
            raise StackError(f"{where}: isa_limit must be avx or none, got {entry['isa_limit']!r}")
        if not isinstance(entry["impls"], list) or not entry["impls"]:
            raise StackError(f"{where}: impls must be a non-empty list")
        name = entry["name"]
        stacks.append(Stack(name, str(entry["title"]), " ".join(str(entry["why"]).split()),
                            tuple(entry["impls"]), entry["isa_limit"], path.parent / f"{name}.lock",
                            path.parent / "reports" / f"{name}.json.gz"))
    if len({s.name for s in stacks}) < len(stacks):
        raise StackError(f"{path}: stack names must be unique")
    return stacks


def find(name: str, stacks: list[Stack] | None = None) -> Stack:
    stacks = stacks if stacks is not None else load_stacks()
    for stack in stacks:
        if stack.name == name:
            return stack
    raise StackError(f"no stack {name!r}; the stacks are: {', '.join(s.name for s in stacks)}")


def describe(stacks: list[Stack]) -> list[str]:
    """Markdown lines for the compatibility page: each stack, why it was chosen, how to rebuild it, and the
    hand-written findings (compat/findings.md) when present."""
    lines = ["## Stacks", ""]
    for s in stacks:
        lines += [f"- **{s.name}** ({s.title}; `bash scripts/compat.sh {s.name}`): {s.why}"]
    findings = COMPAT_DIR / "findings.md"
    if findings.is_file():
        lines += ["", *findings.read_text(encoding="utf-8").rstrip().splitlines()]
    return lines + [""]


def main(argv: list[str]) -> int:
    """``NAME FIELD``: print a field for scripts/compat.sh (impls comma-separated)."""
    if len(argv) != 2 or argv[1] not in ("impls", "isa_limit", "lock", "report"):
        print("usage: python -m conformance.stacks NAME impls|isa_limit|lock|report", file=sys.stderr)
        return 2
    try:
        stack = find(argv[0])
    except StackError as err:
        print(err, file=sys.stderr)
        return 2
    value = getattr(stack, argv[1])
    print(",".join(value) if isinstance(value, tuple) else value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
