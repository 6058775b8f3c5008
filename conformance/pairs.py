"""Which pairs of features the run exercised together, per implementation (the report's coverage.pairs).

A feature is a config option at one value (``hidden_act=relu``, ``is_decoder=True``, and three derived
ones: ``embedding_projection`` (E != H), ``two_or_more_layers``, ``default_layer_norm_eps``), a call input
that was passed (``input:head_mask``), the form of a head mask or a padding side (``head_mask=per_layer``,
``head_mask_fractional=True``, ``padding=left``) or a call flag that was on (``flag:output_attentions``).
Every call the model cache makes records its class and features; two features are exercised together
when one call had both and they meet in its class. The universe is every pair of features of two different
options that the implementation declares it supports (its Capabilities) and that the spec gives a meaning
to: both act on a common part of the model in some class (spec/data/combinations.yaml), so neither a pair
it cannot build nor one whose features never meet (a summary activation and a hidden activation) is
counted as missing. Values that act alike (combinations.yaml ``alike``: the activations) count as their
group, ``hidden_act~nonlinear``. A fault
that shows only when two features meet (a mask with relative positions, a per-layer head mask with
cross-attention) needs its pair exercised; the report lists the pairs no call made.
"""
from __future__ import annotations

import functools
from itertools import combinations
from typing import Any, Iterable, Mapping

import numpy as np

#: config fields whose values are call modes or labels, not features of the computation
_NOT_FEATURES = ("output_attentions", "output_hidden_states", "return_dict", "use_cache", "id2label")
_DERIVED = ("embedding_projection", "two_or_more_layers", "default_layer_norm_eps")


def _spec():
    from spec import load_spec

    return load_spec()


@functools.cache
def _config_options() -> tuple[dict, tuple[str, ...]]:
    """(spec default of every non-derived field, the fields whose values are features: choices and bools)."""
    fields = [f for f in _spec().config.fields if not f.derived]
    return ({f.name: f.default for f in fields},
            tuple(f.name for f in fields if f.name not in _NOT_FEATURES and (f.choices is not None or f.type == "bool")))


def _option(feature: str) -> str:
    """The option a feature is a value of (two values of one option never meet in one call)."""
    return feature.split("~", 1)[0].split("=", 1)[0]


def alike(feature: str) -> str:
    """The feature as pairs count it: a value of an option whose values act alike (combinations.yaml
    ``alike``) becomes its group, ``option~group``; any other feature stays itself."""
    option, _, value = feature.partition("=")
    group = (a := _spec().sections["combinations"].alike.get(option)) and a.group_of(value)
    return f"{option}~{group}" if group else feature


def call_features(config: Mapping[str, Any], inputs: Mapping[str, Any], flags: Mapping[str, Any]) -> frozenset:
    """The features of one call: the model's config, the inputs passed and the flags switched on."""
    defaults, options = _config_options()  # called for every model call: the spec is read once
    cfg = {**defaults, **config}
    out = {f"{name}={cfg.get(name)}" for name in options}
    out.add(f"embedding_projection={cfg['embedding_size'] != cfg['hidden_size']}")
    out.add(f"two_or_more_layers={cfg['num_hidden_layers'] >= 2}")
    out.add(f"default_layer_norm_eps={cfg['layer_norm_eps'] == defaults['layer_norm_eps']}")
    for name, value in inputs.items():
        if value is None:
            continue
        out.add(f"input:{name}")
        if not isinstance(value, np.ndarray):
            continue
        if name == "head_mask" and value.dtype.kind == "f":
            if value.ndim in (1, 2):
                out.add(f"head_mask={'per_layer' if value.ndim == 2 else 'per_head'}")
            out.add(f"head_mask_fractional={bool(np.any((value > 0) & (value < 1)))}")
        if name == "attention_mask" and value.ndim >= 2 and value.size and value.dtype.kind in "iub":
            if np.any(value[..., 0] == 0):
                out.add("padding=left")
            if np.any(value[..., -1] == 0):
                out.add("padding=right")
    out.update(f"flag:{name}" for name, value in flags.items() if value)
    return frozenset(out)


def met(class_name: str, features: Iterable[str]) -> set[tuple[str, str]]:
    """The pairs of ``features`` (of different options) that meet in ``class_name``: both act on a part of
    the model that class has (combinations.yaml). A class the spec does not know (a test's stand-in) has
    no parts, so nothing meets in it."""
    if class_name not in _spec().classes:
        return set()
    counted = sorted({alike(f) for f in features})
    acting = [(f, _option(f), parts) for f in counted if (parts := _acting(class_name, f))]
    return {(a, b) for (a, option_a, parts_a), (b, option_b, parts_b) in combinations(acting, 2)
            if option_a != option_b and parts_a & parts_b}


def acts(class_name: str, feature: str) -> bool:
    """Whether a feature has a meaning in a class the spec knows (acts on some part of it)."""
    return class_name in _spec().classes and bool(_acting(class_name, feature))


@functools.cache
def _acting(class_name: str, feature: str) -> frozenset[str]:
    """The parts of a class (known to the spec) that a feature acts on (``met`` asks this for every call)."""
    spec_cls = _spec().classes[class_name]
    return frozenset(_acts_in(feature, spec_cls, _class_parts(spec_cls)))


def exercised(calls: Iterable[tuple[str, frozenset]]) -> set[tuple[str, str]]:
    """Every pair of features that met in one call: (class name, call_features) of each call."""
    out = set()
    for class_name, features in calls:
        out.update(met(class_name, features))
    return out


def supported_features(caps) -> set[str]:
    """Every feature the implementation declares it can exercise."""
    spec = _spec()
    out = set()
    for f in spec.config.fields:
        if f.derived or f.name in _NOT_FEATURES:
            continue
        values = f.choices if f.choices is not None else (True, False) if f.type == "bool" else None
        if values is not None:
            allowed = caps.config.get(f.name, values)
            out.update(f"{f.name}={v}" for v in values if v in allowed)
    out.update(f"{name}={v}" for name in _DERIVED for v in (True, False))
    out.update(f"input:{name}" for name in caps.inputs)
    if "head_mask" in caps.inputs:
        out.update({"head_mask=per_layer", "head_mask=per_head", "head_mask_fractional=True",
                    "head_mask_fractional=False"})
    if "attention_mask" in caps.inputs:
        out.update({"padding=left", "padding=right"})
    out.update(f"flag:{name}" for name in caps.flags)
    return out


#: an input's form is a feature only in the classes whose call takes that input
_FORM_OF = {"head_mask": "head_mask", "head_mask_fractional": "head_mask", "padding": "attention_mask"}


def _class_parts(spec_cls) -> set[str]:
    """The parts of the model a class has (combinations.yaml): its own head's part, no other head's, and a
    part that needs an input only where the call takes that input."""
    combos = _spec().sections["combinations"]
    takes = {p.name for p in spec_cls.call}
    heads = set(combos.head_parts.values())
    own = combos.head_parts.get(spec_cls.loss) if spec_cls.loss else None
    needs = combos.part_needs_input
    return {p for p in combos.parts if (p not in heads or p == own) and (p not in needs or needs[p] in takes)}


def _acts_in(feature: str, spec_cls, parts: set[str]) -> set[str]:
    """The parts of a class a feature acts on (none: the feature has no meaning in that class)."""
    option = _option(feature)
    needs = option.split(":", 1)[1] if option.startswith(("input:", "flag:")) else _FORM_OF.get(option)
    if needs is not None and needs not in {p.name for p in spec_cls.call}:
        return set()
    return set(_spec().sections["combinations"].acts_on(option)) & parts


def universe(caps) -> set[tuple[str, str]]:
    """The pairs the spec gives a meaning to, for what the implementation supports: two supported features
    of different options that act on a common part of some class it offers (combinations.yaml), where the
    spec does not keep them apart (combinations.yaml ``apart``: cross-attention only in a decoder, ...)."""
    supported = supported_features(caps)
    pairs = set().union(*(met(class_name, supported) for class_name in caps.classes))
    apart = {a.features for a in _spec().sections["combinations"].apart}
    return {p for p in pairs if frozenset(p) not in apart}


def summary(calls: Iterable[tuple[str, frozenset]], caps) -> dict:
    """{exercised, total, missing}: counts of the universe's pairs and the ones no call made."""
    possible = universe(caps)
    done = exercised(calls) & possible
    return {"exercised": len(done), "total": len(possible),
            "missing": [f"{a} x {b}" for a, b in sorted(possible - done)]}
