"""Hypothesis strategies derived from the spec.

Configs are drawn from ``spec/data/config.yaml``: every field inside its valid range, narrowed by the
field's ``strategy`` bounds so that models stay tiny. Model tests do not draw a fresh config per
example (that would mean building and compiling a model each time): they draw one of a few
deterministic *config buckets* (``config_bucket``) that together cover every choice of every
choice field (hidden_act, position_embedding_type, summary_type, ...) with embedding_size == and !=
hidden_size, and one of a few fixed *shape buckets* (batch, seq), then draw the input *values* freely.
With the plugin's ``model_cache`` most examples reuse a handful of models per class.

Inputs are drawn per call argument of a spec class (``spec.classes[...].call``): ids including the
special and boundary values (0, vocab_size-1, pad_token_id), attention masks with right and left
padding and rows with a single visible token, token types, position ids, head masks (0/1 and
fractional).

Everything is drawn inside the implementation's declared Capabilities (conformance.adapters.base): a
config field it supports at some values only takes one of those in every bucket, buckets it rejects as a
whole are not drawn, and a call argument it lacks is left out unless the test ``requires`` it (then the
test is skipped as not supported).

Shape keys: B batch, C choices, S sequence, L layers, N heads, V vocab, T type vocab, P positions.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from hypothesis import strategies as st

from spec import load_spec

# ---- suite policy (not spec facts): sizes of the drawn examples ---------------------------------
#: (B, S) shape buckets; every model test draws one of these, so each model compiles a few shapes only
SHAPE_BUCKETS = ((2, 5), (3, 8))
#: number of choices of the multiple-choice inputs
CHOICES = 2
#: initializer_range of model buckets: larger than the default so that a defect moves outputs visibly
BUCKET_INIT_RANGE = (0.2, 0.5)
#: config fields that change the class's interface or mode; buckets keep their spec default
#: unless a test overrides them (flags are exercised by the tests that own them)
_MODE_FIELDS = ("is_decoder", "add_cross_attention", "use_cache", "output_attentions",
                "output_hidden_states", "return_dict", "tie_word_embeddings", "problem_type",
                "bos_token_id", "eos_token_id")

#: the label value that losses ignore (losses.yaml ignore_index)
IGNORE_INDEX = load_spec().losses.ignore_index


def _spec():
    return load_spec()


# ---- config fields ------------------------------------------------------------------------------
def _bounds(f, *, tiny: bool) -> tuple[float | None, float | None, bool]:
    """(low, high, high_exclusive) of a numeric field; ``tiny`` applies its strategy bounds."""
    lo = f.minimum if f.minimum is not None else f.exclusive_minimum
    if f.maximum is not None:
        hi, hi_excl = f.maximum, False
    else:
        hi, hi_excl = f.exclusive_maximum, f.exclusive_maximum is not None
    if f.type == "int" and f.exclusive_minimum is not None and f.minimum is None:
        lo = int(f.exclusive_minimum) + 1
    strat = dict(f.strategy)
    if tiny:
        lo = strat.get("minimum", lo)
        if "maximum" in strat:
            hi, hi_excl = strat["maximum"], False
    return lo, hi, hi_excl


def field_values(f, *, tiny: bool = True) -> st.SearchStrategy:
    """Valid values of one config field (ignoring cross-field constraints)."""
    if f.choices is not None:
        s = st.sampled_from(f.choices)
    elif f.type == "bool":
        s = st.booleans()
    elif f.type == "int":
        lo, hi, excl = _bounds(f, tiny=tiny)
        lo = 0 if lo is None else int(lo)
        hi = lo + 64 if hi is None else int(hi) - (1 if excl else 0)
        s = st.integers(lo, hi)
    elif f.type == "float":
        lo, hi, excl = _bounds(f, tiny=tiny)
        excl_lo = f.exclusive_minimum is not None and (f.minimum is None)
        lo = 0.0 if lo is None else float(lo)
        hi = lo + 1.0 if hi is None else float(hi)
        s = st.floats(lo, hi, exclude_min=excl_lo, exclude_max=excl, allow_nan=False)
    elif f.type == "str":
        s = st.text(min_size=1, max_size=8)
    else:
        s = st.just(f.default)
    return st.one_of(st.none(), s) if f.nullable else s


def constraints_hold(cfg: Mapping[str, Any]) -> bool:
    """Evaluate every constraint of config.yaml over a full config dict."""
    env = _constraint_env(cfg)
    return all(_eval(c.expr, env) for c in _spec().config.constraints)


def violated_constraints(cfg: Mapping[str, Any]) -> list:
    env = _constraint_env(cfg)
    return [c for c in _spec().config.constraints if not _eval(c.expr, env)]


def _constraint_env(cfg: Mapping[str, Any]) -> dict:
    env = {f.name: f.default for f in _spec().config.fields if not f.derived}
    env.update(cfg)
    n = env.get("num_labels") or 2
    env.setdefault("id2label", None)
    if env["id2label"] is None:
        env["id2label"] = {i: f"LABEL_{i}" for i in range(n)}
    env.setdefault("num_labels", len(env["id2label"]))
    return env


def _eval(expr: str, env: Mapping[str, Any]) -> bool:
    return bool(eval(expr, {"__builtins__": {"len": len}}, dict(env)))  # spec data, not user input


@st.composite
def configs(draw, *, tiny: bool = True, fields: tuple[str, ...] | None = None,
            with_id2label: bool = False) -> dict:
    """A full valid config dict (every non-derived field drawn), satisfying every constraint.

    ``fields`` limits which fields are drawn (the rest keep their defaults)."""
    spec = _spec().config
    names = [f.name for f in spec.fields if not f.derived] if fields is None else list(fields)
    out = {}
    for name in names:
        out[name] = draw(field_values(spec.field(name), tiny=tiny))
    if with_id2label and draw(st.booleans()):
        n = out.get("num_labels", spec.field("num_labels").default)
        out["id2label"] = {i: draw(st.sampled_from(["neg", "pos", "mid", "x"])) + str(i) for i in range(n)}
    _repair(out)
    from hypothesis import assume

    assume(constraints_hold(out))
    return out


def _repair(cfg: dict) -> None:
    """Nudge a drawn config towards the constraints (cheaper than rejecting): hidden_size becomes a
    multiple of num_attention_heads, id-like fields fall inside the vocabulary."""
    if "hidden_size" in cfg and "num_attention_heads" in cfg:
        n = cfg["num_attention_heads"]
        cfg["hidden_size"] = max(n, cfg["hidden_size"] // n * n)
    v = cfg.get("vocab_size")
    for k in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if v is not None and cfg.get(k) is not None:
            cfg[k] = cfg[k] % v
    if cfg.get("add_cross_attention") and not cfg.get("is_decoder", True):
        cfg["add_cross_attention"] = False


# ---- deterministic model buckets ----------------------------------------------------------------
#: buckets drawn by default under the dev/ci profiles (bucket k has choice k of every choice field,
#: so these cover the three position embedding types and three activations; the sequence-summary
#: test asks for the four summary types itself); the thorough profile draws from every bucket
FAST_BUCKETS = 3


def default_buckets() -> tuple[int, ...]:
    from hypothesis import settings

    thorough = settings.default.max_examples >= 100
    return tuple(range(n_config_buckets() if thorough else FAST_BUCKETS))


def n_config_buckets() -> int:
    """Enough buckets that every choice of every choice field appears in one of them."""
    return max(len(f.choices) for f in _spec().config.fields if f.choices)


def config_bucket(index: int, class_name: str | None = None, caps=None, **overrides: Any) -> dict:
    """The ``index``-th tiny model config (deterministic), for ``class_name``; ``overrides`` win.

    Even buckets have embedding_size == hidden_size, odd ones differ; choice fields cycle through
    their choices starting at the spec default; mode fields keep their defaults. A field that ``caps``
    (Capabilities) supports at some values only cycles through those."""
    spec = _spec().config
    rng = random.Random(1000 + index)
    cfg: dict[str, Any] = {}
    s_max = max(s for _, s in SHAPE_BUCKETS)
    for f in spec.fields:
        if f.derived or f.name in _MODE_FIELDS:
            continue
        if f.choices is not None:
            choices = list(f.choices)
            start = choices.index(f.default) if f.default in choices else 0
            cfg[f.name] = choices[(start + index) % len(choices)]
        elif f.type == "bool":
            cfg[f.name] = f.default if index % 2 == 0 else not f.default
        elif f.type == "int" and f.strategy:
            lo, hi, _ = _bounds(f, tiny=True)
            cfg[f.name] = rng.randint(int(lo), int(hi))
        else:
            cfg[f.name] = f.default
    heads = cfg["num_attention_heads"]
    h_lo, h_hi, _ = _bounds(spec.field("hidden_size"), tiny=True)
    cfg["hidden_size"] = heads * rng.randint(max(1, math.ceil(h_lo / heads)), int(h_hi) // heads)
    e_lo, e_hi, _ = _bounds(spec.field("embedding_size"), tiny=True)
    if index % 2 == 0 and e_lo <= cfg["hidden_size"] <= e_hi:
        cfg["embedding_size"] = cfg["hidden_size"]
    elif cfg["embedding_size"] == cfg["hidden_size"]:
        cfg["embedding_size"] = int(e_lo) if cfg["hidden_size"] != e_lo else int(e_hi)
    p_lo, p_hi, _ = _bounds(spec.field("max_position_embeddings"), tiny=True)
    cfg["max_position_embeddings"] = rng.randint(max(int(p_lo), 2 * s_max), max(int(p_hi), 2 * s_max))
    # two layers except in every third bucket: per-layer features (head-mask rows, hidden states, the layer
    # index of weights) need two distinct layers, and the fast buckets (0, 1, 2) must include them
    cfg["num_hidden_layers"] = 1 if index % 3 == 2 else 2
    cfg["initializer_range"] = round(rng.uniform(*BUCKET_INIT_RANGE), 3)
    cfg["classifier_dropout"] = None if index % 3 else 0.2
    if index % 2:  # an epsilon that matters: LayerNorm inputs have variance ~ initializer_range**2
        cfg["layer_norm_eps"] = round(rng.uniform(0.05, 0.5), 3)
    if cfg.get("pad_token_id") is not None:
        cfg["pad_token_id"] = rng.randrange(cfg["vocab_size"]) if index % 2 else 0
    cfg.update(class_config(class_name))
    for name, allowed in (caps.config.items() if caps is not None else ()):
        if cfg.get(name, spec.field(name).default) not in allowed:
            cfg[name] = allowed[index % len(allowed)]
    cfg.update(overrides)
    return cfg


def class_config(class_name: str | None) -> dict:
    """Config fields a class needs to work as specified: the causal LM is a decoder; the QA heads
    need two labels (errors.yaml error.config.qa_num_labels)."""
    out: dict[str, Any] = {}
    if class_name and "CausalLM" in class_name:
        out["is_decoder"] = True
    qa_rule = _spec().errors.get("error.config.qa_num_labels")
    if class_name and qa_rule is not None and class_name in (qa_rule.classes or ()):
        out["num_labels"] = 2
    return out


def no_dropout(cfg: Mapping[str, Any]) -> dict:
    """The config with every dropout rate 0 (for exact train-mode comparisons)."""
    out = dict(cfg)
    for f in _spec().config.fields:
        if f.name.endswith("dropout_prob") or f.name.endswith("_dropout"):
            out[f.name] = 0.0 if f.name != "classifier_dropout" else None
    return out


# ---- inputs -------------------------------------------------------------------------------------
@dataclass
class Case:
    """One drawn example: a bucket's config, the leading dims and the drawn call inputs (numpy)."""

    class_name: str
    config: dict
    dims: dict  # batch, seq (choices for multiple choice), past_seq 0, key_seq = seq
    inputs: dict = field(default_factory=dict)

    @property
    def lead(self) -> tuple[int, ...]:
        """Leading input dims: (B,) or (B, C)."""
        return (self.dims["batch"], self.dims["choices"]) if "choices" in self.dims else (self.dims["batch"],)


def _int_array(draw, shape, lo: int, hi: int, specials=()) -> np.ndarray:
    """An int32 array in [lo, hi]; about a third of the entries are boundary/special values."""
    size = int(np.prod(shape)) if shape else 1
    pool = sorted({v for v in (lo, hi, *specials) if v is not None and lo <= v <= hi})
    elems = st.one_of(st.sampled_from(pool), st.integers(lo, hi), st.integers(lo, hi))
    values = draw(st.lists(elems, min_size=size, max_size=size))
    return np.asarray(values, dtype=np.int32).reshape(shape)


def attention_masks(draw, lead: tuple[int, ...], seq: int, *, kinds=("full", "right", "left", "single")) -> np.ndarray:
    """(lead.., S) 0/1 int32 masks; per row: all ones, right padding, left padding, or a single
    visible token (at the start for right padding, at the end for left)."""
    rows = int(np.prod(lead))
    mask = np.zeros((rows, seq), dtype=np.int32)
    for r in range(rows):
        kind = draw(st.sampled_from(kinds))
        k = {"full": seq, "single": 1}.get(kind) or draw(st.integers(1, seq))
        if kind == "left" or (kind == "single" and "left" in kinds and draw(st.booleans())):
            mask[r, seq - k:] = 1
        else:
            mask[r, :k] = 1
    return mask.reshape(*lead, seq)


def head_masks(draw, cfg: Mapping[str, Any], *, per_layer: bool | None = None,
               fractional: bool | None = None) -> np.ndarray:
    """(L, N) or (N,) float32 head mask with 0/1 or fractional entries."""
    if per_layer is None:
        per_layer = draw(st.booleans())
    if fractional is None:
        fractional = draw(st.booleans())
    shape = (cfg["num_hidden_layers"], cfg["num_attention_heads"]) if per_layer else (cfg["num_attention_heads"],)
    elem = st.floats(0.0, 1.0, width=32) if fractional else st.sampled_from([0.0, 1.0])
    values = draw(st.lists(elem, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.asarray(values, dtype=np.float32).reshape(shape)


def draw_input(draw, name: str, cfg: Mapping[str, Any], lead: tuple[int, ...], seq: int,
               mask_kinds: tuple[str, ...] = ("full", "right", "left", "single")) -> np.ndarray:
    """A valid value of the call argument ``name`` for a model with config ``cfg``."""
    batch = lead[0]
    if name == "input_ids":
        return _int_array(draw, (*lead, seq), 0, cfg["vocab_size"] - 1, (cfg.get("pad_token_id"),))
    if name == "attention_mask":
        return attention_masks(draw, lead, seq, kinds=mask_kinds)
    if name == "token_type_ids":
        return _int_array(draw, (*lead, seq), 0, cfg["type_vocab_size"] - 1)
    if name == "position_ids":
        return _int_array(draw, (*lead, seq), 0, cfg["max_position_embeddings"] - 1)
    if name == "head_mask":
        return head_masks(draw, cfg)
    raise KeyError(f"no input strategy for argument {name!r}")


def draw_labels(draw, class_name: str, cfg: Mapping[str, Any], lead: tuple[int, ...], seq: int,
                *, problem_type: str | None = None) -> dict:
    """Valid label arguments of the class's loss (spec classes.yaml ``labels``), with ignored
    (-100) entries where the loss allows them, and out-of-range QA positions."""
    mc = _spec().classes[class_name]
    batch = lead[0]
    loss = mc.loss
    if loss in ("masked_lm", "causal_lm"):
        y = _int_array(draw, (batch, seq), 0, cfg["vocab_size"] - 1)
        return {"labels": _with_ignored(draw, y)}
    if loss == "token_classification":
        y = _int_array(draw, (batch, seq), 0, cfg["num_labels"] - 1)
        return {"labels": _with_ignored(draw, y)}
    if loss == "pretraining":
        return {"labels": _int_array(draw, (batch, seq), 0, 1)}
    if loss == "multiple_choice":
        return {"labels": _int_array(draw, (batch,), 0, lead[1] - 1)}
    if loss == "question_answering":
        return {k: _int_array(draw, (batch,), -2, seq + 2) for k in ("start_positions", "end_positions")}
    if loss == "sequence_classification":
        kind = problem_type or ("regression" if cfg["num_labels"] == 1 else "single_label_classification")
        k = cfg["num_labels"]
        if kind == "regression":
            vals = draw(st.lists(st.floats(-2, 2, width=32), min_size=batch * k, max_size=batch * k))
            return {"labels": np.asarray(vals, np.float32).reshape((batch,) if k == 1 else (batch, k))}
        if kind == "multi_label_classification":
            return {"labels": _int_array(draw, (batch, k), 0, 1).astype(np.float32)}
        return {"labels": _int_array(draw, (batch,), 0, k - 1)}
    raise KeyError(f"{class_name} has no loss with label arguments")


def _with_ignored(draw, y: np.ndarray) -> np.ndarray:
    """Replace some entries by the ignore index, always keeping at least one counted entry."""
    flags = np.asarray(draw(st.lists(st.booleans(), min_size=y.size, max_size=y.size))).reshape(y.shape)
    flags.flat[0] = False
    return np.where(flags, IGNORE_INDEX, y).astype(y.dtype)


def fitting_buckets(caps, class_name: str, buckets: tuple[int, ...] | None = None,
                    overrides: Mapping[str, Any] | None = None) -> tuple[int, ...]:
    """The buckets (of ``buckets``, default ``default_buckets()``) whose config ``caps`` supports; when none
    does, the test is skipped as not supported, naming why the first one is not."""
    candidates = buckets if buckets is not None else default_buckets()
    fitting = tuple(i for i in candidates
                    if caps.supports_config(class_name, config_bucket(i, class_name, caps, **dict(overrides or {}))).ok)
    if not fitting:
        first = config_bucket(candidates[0], class_name, caps, **dict(overrides or {}))
        caps.skip(caps.supports_config(class_name, first).reason)
    return fitting


@st.composite
def cases(draw, caps, class_name: str, *, args: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids"),
          requires: tuple[str, ...] = (), buckets: tuple[int, ...] | None = None,
          shapes: tuple[tuple[int, int], ...] | None = None, overrides: Mapping[str, Any] | None = None,
          labels: bool = False, mask_kinds: tuple[str, ...] = ("full", "right", "left", "single")) -> Case:
    """A drawn example for ``class_name`` inside ``caps`` (the implementation's Capabilities): a config
    bucket, a shape bucket and values for ``args`` (call argument names of the class; those the class or
    the implementation lacks are left out, except ``requires``, whose absence skips the test). ``labels``:
    the class's label arguments too, where the implementation takes them."""
    spec_class = _spec().classes[class_name]
    caps.skip_unless(*(f"input:{name}" for name in requires))
    index = draw(st.sampled_from(fitting_buckets(caps, class_name, buckets, overrides)))
    cfg = config_bucket(index, class_name, caps, **dict(overrides or {}))
    batch, seq = draw(st.sampled_from(shapes or SHAPE_BUCKETS))
    dims = {"batch": batch, "seq": seq, "past_seq": 0, "key_seq": seq}
    if "choices" in spec_class.lead:
        dims["choices"] = CHOICES
    case = Case(class_name, cfg, dims)
    names = set(spec_class.call_names) & set(caps.inputs)
    for name in args:
        if name in names:
            case.inputs[name] = draw_input(draw, name, cfg, case.lead, seq, mask_kinds)
    if labels and spec_class.loss and not caps.lacking(*(f"input:{k}" for k in spec_class.labels)):
        case.inputs.update(draw_labels(draw, class_name, cfg, case.lead, seq))
    return case
