"""Family 1, signatures: the constructor and call parameters of every class — names, order, kinds and
Python defaults — equal the spec (classes.yaml; clause <Class>.init.<arg> / <Class>.call.<arg>), and
the class has every public method the spec lists (clause <Class>.method.<name>). Only for implementations
that declare the documented API (Capabilities.apis "documented"); others have their own call convention."""
from __future__ import annotations

import inspect
from typing import Any

import pytest

from conformance.tests._helpers import spec_class

_MISSING = object()


@pytest.fixture(autouse=True)
def _documented_api(caps):
    caps.skip_unless("api:documented")

#: default rules whose Python default is None (the meaning is computed when the argument is omitted)
_NONE_RULES = ("none", "config.", "ones", "zeros", "arange", "self.params")


def python_default(rule: str) -> Any:
    """The Python default a spec default rule implies (``inspect.Parameter.empty`` for required)."""
    if rule == "required":
        return inspect.Parameter.empty
    if rule == "true":
        return True
    if rule == "false":
        return False
    if rule.startswith(_NONE_RULES):
        return None
    if rule.startswith("(") and rule.endswith(")"):
        return tuple(int(x) for x in rule.strip("()").split(",") if x.strip())
    try:
        return int(rule)
    except ValueError:
        pass
    try:
        return float(rule)
    except ValueError:
        return rule  # a name such as float32: compared by name


def default_matches(actual: Any, rule: str) -> bool:
    expected = python_default(rule)
    if expected is inspect.Parameter.empty or expected is None or isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, str):  # a dtype name: jnp.float32, np.float32, "float32" all qualify
        name = getattr(actual, "__name__", None) or getattr(actual, "name", None) or str(actual)
        return str(name).split(".")[-1] == expected
    return type(actual) is type(expected) and actual == expected


def compare_signature(check, params, actual: inspect.Signature, where: str) -> None:
    """Every spec parameter is present at its position with its kind and default; no extra ones."""
    got = list(actual.parameters.values())
    by_name = {p.name: (i, p) for i, p in enumerate(got)}
    for p in params:
        check.clause(p.id)
        if p.name not in by_name:
            check.fail(p.id, f"{where} lacks parameter {p.name!r} (spec position {p.position}); "
                             f"has {[q.name for q in got]}")
        index, q = by_name[p.name]
        check.equal(index, p.position, clause=p.id, what=f"{where} position of {p.name!r}")
        check.equal(q.kind.name.lower(), p.kind, clause=p.id, what=f"{where} kind of {p.name!r}")
        if p.kind in ("var_positional", "var_keyword"):
            continue
        check.that(default_matches(q.default, p.default), clause=p.id,
                   message=f"{where} default of {p.name!r} is {q.default!r}; the spec's rule {p.default!r} "
                           f"implies {python_default(p.default)!r}")
    extra = [q.name for q in got if q.name not in {p.name for p in params}]
    if extra:
        blame = params[min(by_name[extra[0]][0], len(params) - 1)]
        check.fail(blame.id, f"{where} has parameters the spec does not list: {extra}")


def test_constructor_signature(check, adapter, class_name):
    compare_signature(check, spec_class(class_name).constructor, adapter.constructor_signature(class_name),
                      f"{class_name}.__init__")


def test_call_signature(check, adapter, class_name):
    where = f"{class_name}.{'call' if adapter.framework == 'tf' else '__call__'}"
    check.clause(*(["decision.flax_past_key_values_on_every_head"] if adapter.framework == "flax" else []))
    compare_signature(check, spec_class(class_name).call, adapter.call_signature(class_name), where)


def test_public_methods(check, adapter, caps, class_name):
    """Each method of the spec's ``methods`` (framework-wide plus the class's own) is a public callable
    of the class. The spec names the methods only; what they do is checked by the families that own
    their behaviour (persistence, dtypes, decoding, ...)."""
    caps.skip_unless("method:method_signature")
    lookup = adapter.method_signature
    methods = spec_class(class_name).methods
    clauses = {m: f"{class_name}.method.{m}" for m in methods}
    check.clause(*clauses.values())
    missing = [m for m in methods if lookup(class_name, m) is None]
    if missing:
        check.fail(clauses[missing[0]], f"{class_name} lacks the public methods {missing} (spec lists {list(methods)})")
