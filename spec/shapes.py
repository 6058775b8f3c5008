"""Evaluate the spec's small expression languages: symbolic shapes and presence conditions.

Shapes are space-separated dims; each dim is an integer expression over names (config fields,
dynamic dimensions and derived symbols of meta.yaml) with + - * // and parentheses, written without
spaces: ``parse_shape("batch*choices seq hidden_size") == ("batch*choices", "seq", "hidden_size")``.

Conditions (outputs.yaml ``present_when``) are boolean expressions over call flags, ``config.<field>``
and ``given('<arg>')``, combined with and / or / not; ``always`` is true.
"""
from __future__ import annotations

import ast
import functools
from typing import Any, Callable, Collection, Mapping

_ARITH = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
          ast.FloorDiv: lambda a, b: a // b, ast.Div: lambda a, b: _exact_div(a, b),
          ast.Mod: lambda a, b: a % b}


def _exact_div(a: int, b: int) -> int:
    if a % b:
        raise ValueError(f"{a} / {b} is not an integer")
    return a // b


def parse_shape(shape: str | None) -> tuple[str, ...]:
    """Split a symbolic shape into its dim expressions ('' is a scalar: ())."""
    if shape is None:
        raise ValueError("not a tensor: shape is None")
    dims = tuple(str(shape).split())
    for d in dims:
        _parse_dim(d)  # raises on syntax errors
    return dims


@functools.lru_cache(maxsize=None)
def _parse_dim(dim: str) -> ast.expr:
    try:
        tree = ast.parse(dim, mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"bad dim expression {dim!r}: {e.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, (ast.BinOp, ast.Name, ast.Constant, ast.Load, ast.UnaryOp, ast.USub,
                                 *_ARITH)):
            raise ValueError(f"bad dim expression {dim!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int):
            raise ValueError(f"bad dim expression {dim!r}: only integer literals")
    return tree


def dim_symbols(dim: str) -> frozenset[str]:
    return frozenset(n.id for n in ast.walk(_parse_dim(dim)) if isinstance(n, ast.Name))


def shape_symbols(shape: str) -> frozenset[str]:
    """Every name a shape uses."""
    out: set[str] = set()
    for d in parse_shape(shape):
        out |= dim_symbols(d)
    return frozenset(out)


def _eval_dim(node: ast.expr, env: Mapping[str, int], dim: str) -> int:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise KeyError(f"shape symbol {node.id!r} (in {dim!r}) has no value; known: {sorted(env)}")
        return int(env[node.id])
    if isinstance(node, ast.UnaryOp):
        return -_eval_dim(node.operand, env, dim)
    return _ARITH[type(node.op)](_eval_dim(node.left, env, dim), _eval_dim(node.right, env, dim))


def with_derived(env: Mapping[str, Any]) -> dict[str, Any]:
    """env plus the derived symbols of meta.yaml that can be computed from it."""
    from spec.loader import load_spec

    out = dict(env)
    meta = load_spec().sections.get("meta")
    for sym in (meta.derived if meta is not None else ()):
        if sym.name not in out and dim_symbols(sym.expr) <= out.keys():
            out[sym.name] = _eval_dim(_parse_dim(sym.expr), out, sym.expr)
    return out


def eval_shape(shape: str, env: Mapping[str, Any]) -> tuple[int, ...]:
    """Concrete shape of a symbolic shape; env maps config fields and dynamic dims to ints
    (derived symbols such as head_dim are added when missing)."""
    full = with_derived(env)
    return tuple(_eval_dim(_parse_dim(d), full, d) for d in parse_shape(shape))


def eval_dim(expr: str | int, env: Mapping[str, Any]) -> int:
    """One dim expression (e.g. a tuple length 'num_hidden_layers+1')."""
    return _eval_dim(_parse_dim(str(expr)), with_derived(env), str(expr))


def _config_value(config: Any, name: str) -> Any:
    if isinstance(config, Mapping):
        return config[name]
    return getattr(config, name)


def eval_condition(expr: str, flags: Mapping[str, Any], given: Collection[str] | Callable[[str], bool],
                   config: Any) -> bool:
    """Evaluate a presence condition.

    flags: resolved call flags (output_attentions, output_hidden_states, use_cache, ...);
    given: the names of the arguments passed as non-None, or a predicate; config: mapping or object.
    """
    is_given = given if callable(given) else (lambda name: name in given)
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"bad condition {expr!r}: {e.msg}") from None

    def ev(node: ast.expr) -> Any:
        if isinstance(node, ast.BoolOp):
            vals = (ev(v) for v in node.values)
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not ev(node.operand)
        if isinstance(node, ast.Name):
            if node.id == "always":
                return True
            if node.id not in flags:
                raise KeyError(f"condition {expr!r} needs flag {node.id!r}; flags given: {sorted(flags)}")
            return flags[node.id]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "config":
            return _config_value(config, node.attr)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "given"
                and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)):
            return bool(is_given(node.args[0].value))
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = ev(node.left), ev(node.comparators[0])
            ops = {ast.Eq: a == b, ast.NotEq: a != b, ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b}
            return ops[type(node.ops[0])]
        raise ValueError(f"bad condition {expr!r}: {ast.dump(node)} is not allowed")

    return bool(ev(tree))


def condition_names(expr: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(flags, config fields, given args) a condition refers to: for static checks of the spec."""
    tree = ast.parse(expr.strip(), mode="eval").body
    flags, fields, args = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "config":
            fields.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "given":
            args.add(node.args[0].value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in ("config", "given", "always"):
            flags.add(node.id)
    return frozenset(flags), frozenset(fields), frozenset(args)
