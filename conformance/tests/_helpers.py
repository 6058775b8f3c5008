"""Shared logic of the spec-driven test families (not a test module).

Shape keys: B batch, C choices, S sequence, L layers, N heads, V vocab, E embedding, H hidden.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from spec import load_spec

#: tolerance kind for comparisons of one implementation with itself on equivalent inputs
#: (padding, batching, omitted defaults, compiled vs eager): the spec's strictest same-implementation kind
SELF_KIND = "compiled_vs_eager"
#: tolerance kind for comparisons with a NumPy recomputation from the definitions (losses)
REFERENCE_KIND = "golden"


def spec_class(name: str):
    return load_spec().classes[name]


def output_spec(class_name: str):
    return load_spec().outputs[spec_class(class_name).output_class]


def build(model_cache, class_name: str, config: Mapping[str, Any], dtype: str = "float32"):
    """A model from the plugin's cache (built once per class/config/dtype/device)."""
    return model_cache.get(class_name, dict(config), dtype=dtype)


def run(model_cache, handle, inputs: Mapping[str, Any], **kwargs):
    """adapter.run (through the cache, which counts compilations) with numpy inputs -> RunResult."""
    return model_cache.run(handle, {k: v for k, v in inputs.items() if v is not None}, **kwargs)


def as_float(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def non_causal(class_name: str, config: Mapping[str, Any]) -> bool:
    return not config.get("is_decoder", False) and "CausalLM" not in class_name


def real_positions(attention_mask: np.ndarray) -> np.ndarray:
    """Boolean (lead.., S) of the positions that attend (mask == 1)."""
    return np.asarray(attention_mask) == 1


def tensor_fields(result, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The present array fields of a RunResult (tuple fields flattened as name.i), optionally limited."""
    out = {}
    for name, value in result.fields.items():
        if names is not None and name not in names:
            continue
        if isinstance(value, tuple):
            for i, v in enumerate(value):
                out[f"{name}.{i}"] = np.asarray(v)
        elif isinstance(value, np.ndarray) or np.isscalar(value):
            out[name] = np.asarray(value)
    return out


def primary_field(class_name: str) -> str:
    """The first always-present field of the class's output (logits, last_hidden_state, ...)."""
    for f in output_spec(class_name).fields:
        if f.present_when == "always":
            return f.name
    raise LookupError(f"{class_name} has no always-present output field")


def always_fields(class_name: str) -> tuple[str, ...]:
    return tuple(f.name for f in output_spec(class_name).fields if f.present_when == "always")


def assert_finite(check, arrays: Mapping[str, np.ndarray], *, clause: str) -> None:
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "f":
            check.that(bool(np.all(np.isfinite(a))), clause=clause, message=f"{name} has NaN/inf values")


# ---- symbolic shapes and presence conditions (spec outputs.yaml / classes.yaml) ------------------
def shape_env(config: Mapping[str, Any], dims: Mapping[str, int]) -> dict:
    """Symbols a spec shape may use: config fields, dynamic dims (batch, seq, ...) and head_dim."""
    env = {k: v for k, v in config.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    env["head_dim"] = config["hidden_size"] // config["num_attention_heads"]
    env.update(dims)
    return env


def eval_shape(shape: str, config: Mapping[str, Any], dims: Mapping[str, int]) -> tuple[int, ...]:
    """'batch num_attention_heads seq seq' -> concrete tuple ('' is a scalar: ())."""
    spec = load_spec()
    if hasattr(spec, "eval_shape"):
        return tuple(spec.eval_shape(shape, {**config, **dims}))
    env = shape_env(config, dims)
    return tuple(int(eval(d, {"__builtins__": {}}, env)) for d in shape.split())  # spec data


def eval_count(expr: str, config: Mapping[str, Any], dims: Mapping[str, int]) -> int:
    return int(eval(str(expr), {"__builtins__": {}}, shape_env(config, dims)))


class _Config:
    def __init__(self, config: Mapping[str, Any]):
        self.__dict__.update(config)


def resolved_flags(class_name: str, config: Mapping[str, Any], flags: Mapping[str, Any]) -> dict:
    """Each call flag's value: the argument when given (not None), else the config field (spec rule
    ``config.<field>``)."""
    out = {}
    for p in spec_class(class_name).call:
        if p.dtype == "bool" and p.default.startswith("config."):
            given = flags.get(p.name)
            out[p.name] = given if given is not None else config.get(p.default[len("config."):],
                                                                     _config_default(p.default[len("config."):]))
    return out


def _config_default(name: str) -> Any:
    return load_spec().config.field(name).default


def is_present(condition: str, class_name: str, config: Mapping[str, Any], flags: Mapping[str, Any],
               inputs: Mapping[str, Any]) -> bool:
    """Evaluate an outputs.yaml present_when condition for one call."""
    if condition == "always":
        return True
    full = {f.name: f.default for f in load_spec().config.fields if not f.derived}
    full.update(config)
    env = dict(resolved_flags(class_name, full, flags))
    env["config"] = _Config(full)
    env["given"] = lambda name: inputs.get(name) is not None
    return bool(eval(condition, {"__builtins__": {}}, env))  # spec data


def examples(n: int):
    """Hypothesis settings with at most ``n`` examples under the dev/ci profiles (models are run per
    example, so the ci budget is spent on classes, not repetitions); thorough keeps its count."""
    from hypothesis import settings

    current = settings.default
    if current.max_examples >= 100:
        return settings(current)
    return settings(current, max_examples=min(n, current.max_examples))
