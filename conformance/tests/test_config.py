"""ElectraConfig validation, generated from spec/data/config.yaml (clauses ElectraConfig.field.* and
ElectraConfig.constraint.*): defaults, valid values accepted, each field's invalid values and each
violated constraint rejected with a ValueError naming the field, both by electra_core.ElectraConfig
(reported under "shared": it is this project's code, whatever --impl is) and by the adapter's model
constructor (reported under the implementation)."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from spec import load_spec

_CONFIG = load_spec().config
_FIELDS = [f for f in _CONFIG.fields if not f.derived]
_DERIVED = [f for f in _CONFIG.fields if f.derived]


def _config_class():
    from electra_core.config import ElectraConfig

    return ElectraConfig


def invalid_values(f) -> list[tuple[Any, str]]:
    """(value, why) pairs outside the field's type, range or choices (config.yaml)."""
    out: list[tuple[Any, str]] = []
    if not f.nullable:
        out.append((None, "None for a non-nullable field"))
    wrong_type = {"int": ["3", 1.5, True], "float": ["0.1", True], "bool": ["yes", 1], "str": [3], "dict": [[1, 2]]}
    out += [(v, f"wrong type {type(v).__name__}") for v in wrong_type.get(f.type, [])]
    if f.choices is not None and f.type == "str":
        out.append(("not_a_choice", "outside choices"))
    step = 1 if f.type == "int" else 0.5
    if f.minimum is not None:
        out.append((type(f.minimum)(f.minimum - step) if f.type == "int" else f.minimum - step, "below minimum"))
    if f.maximum is not None:
        out.append((f.maximum + step, "above maximum"))
    if f.exclusive_minimum is not None:
        out.append((f.exclusive_minimum, "equal to the exclusive minimum"))
    if f.exclusive_maximum is not None:
        out.append((f.exclusive_maximum, "equal to the exclusive maximum"))
    return out


_INVALID = [(f, v, why) for f in _FIELDS for v, why in invalid_values(f)]


@pytest.mark.parametrize("field_spec,value,why", _INVALID,
                         ids=[f"{f.name}-{why.replace(' ', '_')}" for f, _, why in _INVALID])
def test_invalid_field_value_rejected(shared_check, field_spec, value, why):
    with shared_check.raises(ValueError, clause=field_spec.id, words=(field_spec.name,), edge=why):
        _config_class()(**{field_spec.name: value})


_NON_FINITE = [(f, v) for f in _FIELDS if f.type == "float"
               and any(b is not None for b in (f.minimum, f.maximum, f.exclusive_minimum, f.exclusive_maximum))
               for v in (float("nan"), float("inf"), float("-inf"))]


@pytest.mark.parametrize("field_spec,value", _NON_FINITE, ids=[f"{f.name}-{v}" for f, v in _NON_FINITE])
def test_non_finite_float_rejected(shared_check, field_spec, value):
    """error.config.non_finite: NaN and infinities pass a range check that only compares."""
    with shared_check.raises(ValueError, clause="error.config.non_finite", words=(field_spec.name, "finite"),
                             edge=f"{field_spec.name} = {value}"):
        _config_class()(**{field_spec.name: value})


@pytest.mark.parametrize("field_spec", _FIELDS + _DERIVED, ids=lambda f: f.name)
def test_default_value(shared_check, field_spec):
    made = _config_class()()
    expected = field_spec.default
    actual = getattr(made, field_spec.name)
    if field_spec.derived:  # the default is an expression over the other fields
        env = {f.name: getattr(made, f.name) for f in _FIELDS}
        env["id2label"] = made.id2label
        expected = eval(field_spec.default, {}, env)  # spec data, not user input
    shared_check.equal(actual, expected, clause=field_spec.id, what=f"ElectraConfig().{field_spec.name}")


@given(cfg=S.configs(tiny=False, with_id2label=True))
def test_valid_configs_accepted(shared_check, cfg):
    shared_check.clause(*(f.id for f in _FIELDS))
    try:
        made = _config_class()(**cfg)
    except Exception as err:  # noqa: BLE001 - a valid config must never raise
        shared_check.fail(_blame(cfg, str(err)), f"valid config rejected: {type(err).__name__}: {err}; config {cfg}")
    for name, value in cfg.items():
        shared_check.equal(getattr(made, name), value, clause=_CONFIG.field(name).id, what=f"{name} kept as given")


def _blame(cfg: dict, message: str) -> str:
    for f in _FIELDS:
        if f.name in message:
            return f.id
    return _FIELDS[0].id


#: redraws of a constraint's fields per example before it is filtered out
_REDRAWS = 20


@st.composite
def _violating(draw, constraint):
    """A config whose fields are each valid but which violates exactly ``constraint``: start from a
    valid config and redraw the fields the constraint's expression names."""
    from hypothesis import assume

    cfg = draw(S.configs(tiny=True))
    names = [n for n in compile(constraint.expr, "<constraint>", "eval").co_names if n != "len"]
    for _ in range(_REDRAWS):  # most redraws satisfy a constraint (pad_in_vocab): retry here rather than
        for name in names:     # filter, which ends in hypothesis' FailedHealthCheck
            if name == "id2label":
                n = draw(st.integers(1, 5))
                cfg["id2label"] = {i: f"c{i}" for i in range(n)}
            else:
                cfg[name] = draw(S.field_values(_CONFIG.field(name), tiny=True))
        if [c.id for c in S.violated_constraints(cfg)] == [constraint.id]:
            return cfg
    assume(False)



def _constraint_words(constraint) -> tuple[str, ...]:
    names = [n for n in compile(constraint.expr, "<constraint>", "eval").co_names if n != "len"]
    return tuple(n for n in names if n in constraint.message.replace("{", " ").replace("}", " "))


@pytest.mark.parametrize("constraint", _CONFIG.constraints, ids=lambda c: c.id_suffix)
def test_constraint_violation_rejected(shared_check, constraint):
    @given(cfg=_violating(constraint))
    def violated(cfg):
        with shared_check.raises(ValueError, clause=constraint.id, words=_constraint_words(constraint)):
            _config_class()(**cfg)

    violated()


def test_adapter_build_validates_config(check, adapter, caps, class_name):
    """Every model constructor validates its config (error.config.invalid): each invalid value of each
    field (every edge of its range, as ElectraConfig is tested), on top of a valid tiny config."""
    base = S.config_bucket(0, class_name, caps)
    for f in _FIELDS:
        for value, why in invalid_values(f):
            cfg = dict(base, **{f.name: value})
            with check.raises(ValueError, clause=f.id, words=(f.name,), edge=why):
                adapter.build(class_name, cfg, device="cpu")
    check.clause("error.config.invalid")
