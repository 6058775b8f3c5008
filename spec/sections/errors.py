"""errors.yaml: bad-input clauses (condition -> exception and message fragments)."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class ExceptionSpec:
    name: str
    base: str  # builtin exception it derives from
    doc: str


@dataclass(frozen=True)
class ErrorClause:
    id: str
    condition: str
    frameworks: tuple[str, ...]
    classes: tuple[str, ...] | None  # None = every class of those frameworks
    exception: str
    message: tuple[str, ...]  # fragments with {placeholders} the triggering test fills in
    when: str  # call | init | config | load | save
    doc: str
    refs: tuple[str, ...] = ()

    def applies_to(self, class_name: str, framework: str) -> bool:
        return framework in self.frameworks and (self.classes is None or class_name in self.classes)

    def accepts(self, exc: BaseException) -> bool:
        """True when exc's class or one of its bases is named `exception` (a named checkpoint error
        must be raised under that name; its `base` in errors.yaml is what it derives from)."""
        return self.exception in {k.__name__ for k in type(exc).__mro__}

    def expected_fragments(self, **values) -> tuple[str, ...]:
        """The message fragments with placeholders filled in (values as str; tuples as Python prints them)."""
        return tuple(m.format(**{k: str(v) for k, v in values.items()}) for m in self.message)


def build_errors(raw: dict) -> tuple[Mapping[str, ExceptionSpec], Mapping[str, ErrorClause]]:
    exceptions = {n: ExceptionSpec(n, e["base"], e["doc"]) for n, e in raw["exceptions"].items()}
    errors = {}
    for e in raw["errors"]:
        classes = e["classes"]
        errors[e["id"]] = ErrorClause(
            id=e["id"], condition=e["condition"], frameworks=tuple(e["frameworks"]),
            classes=None if classes == "all" else tuple(classes), exception=e["exception"],
            message=tuple(e["message"]), when=e["when"], doc=e["doc"], refs=tuple(e.get("refs", ())))
    return MappingProxyType(exceptions), MappingProxyType(errors)
