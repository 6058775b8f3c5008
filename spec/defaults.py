"""The default-rule language of classes.yaml: what an omitted argument means.

    parse_default("zeros_like(input_ids)")           -> DefaultRule("zeros_like", ("input_ids",))
    parse_default("arange(past_seq, past_seq+seq)")  -> DefaultRule("arange", ("past_seq", "past_seq+seq"))
    default_value(rule, env, config)                 -> the concrete value (numpy array for tensors)
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from spec.shapes import eval_dim, eval_shape, parse_shape

_CALL = re.compile(r"^(ones|zeros|ones_like|zeros_like|arange)\((.*)\)$")


@dataclass(frozen=True)
class DefaultRule:
    """kind: required | none | literal | config | ones | zeros | ones_like | zeros_like | arange | params | dtype."""

    kind: str
    args: tuple[Any, ...] = ()


def parse_default(rule: str) -> DefaultRule:
    rule = rule.strip()
    if rule in ("required", "none"):
        return DefaultRule(rule)
    if rule in ("true", "false"):
        return DefaultRule("literal", (rule == "true",))
    if rule == "self.params":
        return DefaultRule("params")
    if rule == "float32":
        return DefaultRule("dtype", ("float32",))
    if rule.startswith("config."):
        return DefaultRule("config", (rule[len("config."):],))
    m = _CALL.match(rule)
    if m:
        kind, inner = m.groups()
        if kind in ("ones", "zeros"):
            parse_shape(inner)
            return DefaultRule(kind, (inner,))
        if kind in ("ones_like", "zeros_like"):
            if inner != "input_ids":
                raise ValueError(f"default rule {rule!r}: only input_ids can be mirrored")
            return DefaultRule(kind, (inner,))
        start, stop = (s.strip() for s in inner.split(","))
        parse_shape(start), parse_shape(stop)
        return DefaultRule("arange", (start, stop))
    try:
        value = ast.literal_eval(rule)
    except (ValueError, SyntaxError):
        raise ValueError(f"unknown default rule {rule!r}") from None
    return DefaultRule("literal", (value,))


def default_value(rule: str | DefaultRule, env: Mapping[str, Any], config: Any = None,
                  input_shape: tuple[int, ...] | None = None) -> Any:
    """Concrete value of a rule. env: config fields + dynamic dims (batch, seq, past_seq, ...);
    input_shape: the shape of input_ids (leading dims + seq) for *_like and arange rules.
    Ids and masks are int32 arrays; `arange` is broadcast over input_shape's leading dims."""
    r = parse_default(rule) if isinstance(rule, str) else rule
    if r.kind in ("required", "params"):
        raise ValueError(f"rule {r.kind!r} has no value of its own")
    if r.kind == "none":
        return None
    if r.kind in ("literal", "dtype"):
        return r.args[0]
    if r.kind == "config":
        return config[r.args[0]] if isinstance(config, Mapping) else getattr(config, r.args[0])
    if r.kind in ("ones", "zeros"):
        return (np.ones if r.kind == "ones" else np.zeros)(eval_shape(r.args[0], env), dtype=np.int32)
    if input_shape is None:
        raise ValueError(f"rule {r.kind!r} needs input_shape")
    if r.kind in ("ones_like", "zeros_like"):
        return (np.ones if r.kind == "ones_like" else np.zeros)(input_shape, dtype=np.int32)
    start, stop = eval_dim(r.args[0], env), eval_dim(r.args[1], env)
    return np.broadcast_to(np.arange(start, stop, dtype=np.int32), tuple(input_shape[:-1]) + (stop - start,)).copy()
