"""Shared logic of the spec-driven test families (not a test module).

Shape keys: B batch, C choices, S sequence, L layers, N heads, V vocab, E embedding, H hidden.
"""
from __future__ import annotations

import contextlib
import logging
import string
import warnings
from typing import Any, Iterator, Mapping

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


def drawn_weights(like: Mapping[str, np.ndarray], scale: float, seed: int) -> dict[str, np.ndarray]:
    """Weights of the shapes of ``like`` drawn by the suite: matrices and tables N(0, scale), LayerNorm
    weights 1 + N(0, 0.1), other vectors N(0, 0.1 * scale). A numeric test that loads them does not depend on
    the implementation's own initialiser (which may ignore initializer_range and give weights so small that
    two formulas agree)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in sorted(like.items()):
        shape = np.shape(value)
        if name.endswith("LayerNorm.weight"):
            out[name] = 1.0 + rng.normal(0.0, 0.1, shape)
        else:
            out[name] = rng.normal(0.0, scale if len(shape) > 1 else 0.1 * scale, shape)
    return {k: v.astype(np.float32) for k, v in out.items()}


def run(model_cache, handle, inputs: Mapping[str, Any], *, side: Mapping[str, Any] | None = None, **kwargs):
    """adapter.run (through the cache, which counts compilations) with numpy inputs -> RunResult.
    ``flags`` are the test's subject (an implementation without one is skipped); ``side`` flags are
    requested only where the implementation offers them (whatever they add is compared when returned)."""
    caps = model_cache.capabilities
    flags = dict(kwargs.pop("flags", None) or {})
    flags.update({k: v for k, v in (side or {}).items() if not caps.lacking(f"flag:{k}")})
    return model_cache.run(handle, {k: v for k, v in inputs.items() if v is not None}, flags=flags, **kwargs)


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
def full_config(config: Mapping[str, Any]) -> dict:
    """The config dict with every omitted non-derived field at its spec default."""
    out = {f.name: f.default for f in load_spec().config.fields if not f.derived}
    out.update(config)
    return out


def _int_env(config: Mapping[str, Any], dims: Mapping[str, int]) -> dict:
    env = {k: v for k, v in full_config(config).items() if isinstance(v, int) and not isinstance(v, bool)}
    env.setdefault("head_dim", env["hidden_size"] // env["num_attention_heads"])  # meta.yaml derived symbol
    return {**env, **dims}


def eval_shape(shape: str, config: Mapping[str, Any], dims: Mapping[str, int]) -> tuple[int, ...]:
    """'batch num_attention_heads seq seq' -> a concrete tuple ('' is a scalar: ())."""
    from spec.shapes import eval_shape as _eval

    return _eval(shape, _int_env(config, dims))


def eval_count(expr: str, config: Mapping[str, Any], dims: Mapping[str, int]) -> int:
    from spec.shapes import eval_dim

    return eval_dim(expr, _int_env(config, dims))


def resolved_flags(class_name: str, config: Mapping[str, Any], flags: Mapping[str, Any]) -> dict:
    """Each call flag's value: the argument when given (not None), else the config field (spec rule
    ``config.<field>``)."""
    cfg = full_config(config)
    out = {}
    for p in spec_class(class_name).call:
        if p.dtype == "bool" and p.default.startswith("config."):
            given = flags.get(p.name)
            out[p.name] = given if given is not None else cfg[p.default[len("config."):]]
    return out


def is_present(condition: str, class_name: str, config: Mapping[str, Any], flags: Mapping[str, Any],
               inputs: Mapping[str, Any]) -> bool:
    """Evaluate an outputs.yaml present_when condition for one call."""
    from spec.shapes import eval_condition

    return eval_condition(condition, resolved_flags(class_name, config, flags),
                          lambda name: inputs.get(name) is not None, full_config(config))


def thorough() -> bool:
    """Whether the active profile is the thorough one (many examples): the costlier checks then run for
    every class and case, where dev/ci run the subset each test names."""
    from hypothesis import settings

    return settings.default.max_examples >= 100


def examples(n: int):
    """Hypothesis settings with at most ``n`` examples and no shrinking under the dev/ci profiles
    (every example runs models, so the ci budget goes to classes, not repetitions, and a failure is
    reported as found); the thorough profile keeps its count and shrinks."""
    from hypothesis import HealthCheck, Phase, settings

    current = settings.default
    common = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                           HealthCheck.data_too_large]}
    if thorough():
        return settings(current, **common)
    return settings(current, max_examples=min(n, current.max_examples),
                    phases=(Phase.explicit, Phase.reuse, Phase.generate), **common)


# ---- comparing two calls field by field ---------------------------------------------------------
#: fields never compared between calls (opaque caches; the TF cache is checked by the decoding test)
NOT_COMPARED = ("past_key_values",)


def seq_prefix(k: int):
    """Index function keeping the first k positions of every `seq` and `key_seq` dim of a field (without a
    cache the keys are the sequence's positions)."""
    def index(fspec, array):
        dims = fspec.shape.split()
        return array[tuple(slice(0, k) if d in ("seq", "key_seq") else slice(None) for d in dims)]
    return index


def batch_rows(rows, choices: int = 1):
    """Index function selecting examples ``rows`` along the leading batch (or batch*choices) dim."""
    rows = np.asarray(rows)

    def index(fspec, array):
        first = fspec.shape.split()[0] if fspec.shape else ""
        if first == "batch":
            return array[rows]
        if first == "batch*choices":
            return array[(rows[:, None] * choices + np.arange(choices)).reshape(-1)]
        return None  # no batch dim (a scalar loss): not comparable row-wise
    return index


def compare_outputs(check, actual, expected, class_name: str, *, clause: str, kind: str = SELF_KIND,
                    index_actual=None, index_expected=None, exact: bool = False) -> None:
    """Every field present in ``expected`` (RunResults) must be present in ``actual`` and equal after
    the optional index functions; ``exact`` asks for bitwise equality."""
    for fspec in output_spec(class_name).fields:
        if fspec.name in NOT_COMPARED or fspec.container is not None or fspec.name not in expected.fields:
            continue
        check.that(fspec.name in actual.fields, clause=clause, message=f"{fspec.name} missing from one of the calls")
        exp, act = expected.fields[fspec.name], actual.fields[fspec.name]
        pairs = zip(act, exp) if fspec.tuple else [(act, exp)]
        for i, (a, e) in enumerate(pairs):
            a = index_actual(fspec, np.asarray(a)) if index_actual else np.asarray(a)
            e = index_expected(fspec, np.asarray(e)) if index_expected else np.asarray(e)
            if a is None or e is None:
                continue
            what = f"{fspec.name}{f'[{i}]' if fspec.tuple else ''}"
            if exact:
                check.equal(a, e, clause=clause, what=what)
            else:
                check.allclose(a, e, clause=clause, kind=kind, field=fspec.name)


def max_difference(a, b, class_name: str) -> float:
    """Largest |a - b| over the tensor fields both RunResults have."""
    worst = 0.0
    for name, value in tensor_fields(a).items():
        other = tensor_fields(b).get(name)
        if other is not None and np.shape(other) == np.shape(value):
            worst = max(worst, float(np.max(np.abs(as_float(value) - as_float(other)), initial=0.0)))
    return worst


def mode_clause(adapter) -> str:
    """The behaviour clause of the training/inference switch of the adapter's framework."""
    return "behaviour.tf.training_flag" if adapter.framework == "tf" else "behaviour.flax.dropout"


def compile_clause(adapter) -> str:
    return "behaviour.tf.tf_function" if adapter.framework == "tf" else "behaviour.flax.jit"


def blame_alternative(check, got, want, alternatives, *, floor: float = 1e-5, factor: float = 100.0) -> None:
    """Fail on the clause of an alternative reading of the spec that explains ``got`` far better
    than the spec's ``want`` does (its error ``factor`` times smaller, while the spec's error exceeds
    ``floor``, i.e. more than float32 noise) — even when ``want`` is within tolerance: such an output
    follows another formula. ``alternatives``: (clause, description, expected array) triples."""
    got = as_float(got)
    spec_error = float(np.max(np.abs(got - as_float(want)), initial=0.0))
    if spec_error <= floor:
        return
    for clause, description, expected in alternatives:
        if expected is None or np.shape(expected) != got.shape:
            continue
        error = float(np.max(np.abs(got - as_float(expected)), initial=0.0))
        if error * factor < spec_error:
            check.fail(clause, f"the output follows {description} (max error {error:.2g}) rather than the spec "
                               f"(max error {spec_error:.2g})")


def error_fragments(error, values: Mapping[str, Any]) -> tuple[str, ...]:
    """The message fragments of an errors.yaml clause whose placeholders ``values`` knows, filled in."""
    out = []
    for frag in error.message:
        names = [n for _, n, _, _ in string.Formatter().parse(frag) if n]
        if all(n in values for n in names):
            out.append(frag.format(**{n: str(values[n]) for n in names}))
    return tuple(out)


def error_exceptions(error) -> tuple[type, ...]:
    """The built-in exception class an errors.yaml clause names (a named checkpoint error: its base)."""
    import builtins

    spec = load_spec()
    name = error.exception if error.exception not in spec.exceptions else spec.exceptions[error.exception].base
    return (getattr(builtins, name),)


def _flat_arrays(value, prefix: str, out: dict) -> dict:
    if isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            _flat_arrays(v, f"{prefix}.{i}", out)
    elif value is not None and not isinstance(value, dict):  # a dict is an opaque Flax cache
        out[prefix] = np.asarray(value)
    return out


def native_arrays(output) -> tuple[str, dict]:
    """(form, arrays) of what a model call returned: form is the output class name or 'tuple';
    arrays maps field (or tuple position) names, nested tuples flattened as name.i, to numpy."""
    if hasattr(output, "keys"):
        out = {}
        for name in output.keys():
            _flat_arrays(output[name], name, out)
        return type(output).__name__, out
    return "tuple", _flat_arrays(tuple(output), "", {})


@contextlib.contextmanager
def warnings_said() -> Iterator[list[str]]:
    """The text of every warning said inside the block, in a list filled when the block ends: Python warnings,
    and log records at WARNING or above of the root logger and of the loggers that keep their records from it
    (transformers' library logger does)."""
    said: list[str] = []

    class Records(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    handler = Records(logging.WARNING)
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger) and not logger.propagate]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    said.extend(str(w.message) for w in caught)
