"""Calls chosen to exercise the pairs of features the spec gives a meaning to (coverage.pairs), by
pairwise selection: a greedy all-pairs covering (each new call is the candidate that meets the most pairs
not yet met), restricted to the pairs that meet in the call's class (combinations.yaml, conformance.pairs).

A call is a ``Row``: one level per factor. Factors are the features the NumPy model (numpy_model.encoder
and head_outputs) recomputes: config options, positions, the padding mask, the head mask in each form, the
output flags, and the class (every class but multiple choice); token types are always passed. Pairs of
features no factor makes (caches, cross-attention, labels, the sequence summary, inputs_embeds,
return_dict) are left to the other families and stay listed as missing in the report when no test meets
them.

Shape keys: B batch, S sequence, L layers, N heads.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from conformance import pairs, strategies as S

BATCH, SEQUENCE = 2, 5
#: factor -> its levels; the first level is the plain call (no input, flag off, default config)
_INPUT_LEVELS = {"position_ids": ("off", "on"),
                 "attention_mask": ("off", "full", "left", "right"),
                 "head_mask": ("off", "per_layer", "per_head", "per_layer_fractional", "per_head_fractional")}
_FLAGS = ("output_attentions", "output_hidden_states")
_DERIVED = ("embedding_projection", "two_or_more_layers", "default_layer_norm_eps")
_CONFIG = ("hidden_act", "position_embedding_type", "is_decoder", "tie_word_embeddings")
#: a LayerNorm epsilon that changes the numbers of the drawn weights (not the spec default)
OTHER_EPS = 0.1


@dataclass(frozen=True)
class Row:
    class_name: str
    levels: tuple[tuple[str, Any], ...]  # (factor, level), every factor but the class

    def level(self, factor: str):
        return dict(self.levels)[factor]

    @property
    def id(self) -> str:
        shown = [f"{k}={v}" for k, v in self.levels if v not in ("off", False) or k in _DERIVED]
        return f"{self.class_name}[{', '.join(shown)}]"


def config_of(row: Row, caps) -> dict:
    """The model config of a row: bucket 0's sizes, the row's options and derived options."""
    levels = dict(row.levels)
    cfg = S.config_bucket(0, row.class_name, caps)
    cfg.update({name: levels[name] for name in _CONFIG if name in levels})
    if levels.get("embedding_projection"):
        cfg["embedding_size"] = cfg["hidden_size"] // 2
    cfg["num_hidden_layers"] = 2 if levels.get("two_or_more_layers", True) else 1
    default_eps = pairs._config_options()[0]["layer_norm_eps"]
    cfg["layer_norm_eps"] = default_eps if levels.get("default_layer_norm_eps", True) else OTHER_EPS
    cfg["hidden_dropout_prob"] = cfg["attention_probs_dropout_prob"] = 0.0
    return cfg


def inputs_of(row: Row, cfg: Mapping[str, Any], caps_inputs, seed: int = 0) -> tuple[dict, dict]:
    """(inputs, flags) of a row: (B, S) ids and token types (always passed: what an omitted one means is
    the defaults family's, and a port that gets it wrong would fail every call here), positions (a
    permutation of 0..S-1 per example, offset by 1), a 0/1 mask padded on the given side, a head mask (L, N)
    or (N,) of 0/1 or with 0.5."""
    rng = np.random.default_rng(seed)
    levels = dict(row.levels)
    inputs: dict[str, Any] = {"input_ids": rng.integers(0, cfg["vocab_size"], (BATCH, SEQUENCE)).astype(np.int32)}
    if "token_type_ids" in caps_inputs:
        inputs["token_type_ids"] = rng.integers(0, cfg["type_vocab_size"], (BATCH, SEQUENCE)).astype(np.int32)
    if levels.get("position_ids", "off") == "on":
        inputs["position_ids"] = np.stack([rng.permutation(SEQUENCE) + 1 for _ in range(BATCH)]).astype(np.int32)
    mask = levels.get("attention_mask", "off")
    if mask != "off":
        m = np.ones((BATCH, SEQUENCE), np.int32)
        if mask == "left":
            m[:, :2] = 0
        elif mask == "right":
            m[:, -2:] = 0
        inputs["attention_mask"] = m
    head = levels.get("head_mask", "off")
    if head != "off":
        layers, heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
        values = np.ones((layers, heads), np.float32)
        values[-1, 0] = 0.0  # one head off in the last layer: per-layer rows differ
        if head.endswith("fractional"):
            values[0, heads - 1] = 0.5
        inputs["head_mask"] = values if head.startswith("per_layer") else values[-1]
    flags = {name: True for name in _FLAGS if levels.get(name, False)}
    return inputs, flags


def _factors(caps, framework: str) -> dict[str, tuple]:
    """The factors the implementation supports, each with the levels it supports."""
    spec = pairs._spec()
    out: dict[str, tuple] = {}
    for name in _CONFIG:
        field = spec.config.field(name)
        values = field.choices if field.choices is not None else (field.default, not field.default)
        allowed = tuple(v for v in values if v in caps.config.get(name, values))
        if allowed:
            out[name] = allowed
    out.update({name: (True, False) for name in _DERIVED})
    if OTHER_EPS not in caps.config.get("layer_norm_eps", (OTHER_EPS,)):
        out["default_layer_norm_eps"] = (True,)
    out.update({name: levels for name, levels in _INPUT_LEVELS.items() if name in caps.inputs})
    out.update({name: (False, True) for name in _FLAGS if name in caps.flags})
    return out


def _classes(caps, framework: str) -> tuple[str, ...]:
    spec = pairs._spec()
    return tuple(c for c in caps.classes if spec.classes[c].framework == framework
                 and "choices" not in spec.classes[c].lead)


@dataclass(frozen=True)
class Selection:
    rows: tuple[Row, ...]  # the calls, in the order chosen
    target: frozenset  # the universe's pairs (conformance.pairs.universe) some row could meet
    unreached: frozenset  # those no chosen row meets (empty unless the search gave up)


def select(caps, framework: str, tries: int = 4) -> Selection:
    """The calls that together meet every pair of the implementation's universe that the factors can reach
    (deterministic for the same capabilities)."""
    factors, classes = _factors(caps, framework), _classes(caps, framework)
    plain = {name: levels[0] for name, levels in factors.items()}
    known: dict[Row, set] = {}

    def met(class_name: str, levels: Mapping[str, Any]) -> set[tuple[str, str]]:
        row = Row(class_name, tuple(levels.items()))
        if row not in known:
            cfg = config_of(row, caps)
            known[row] = pairs.met(class_name, pairs.call_features(cfg, *inputs_of(row, cfg, caps.inputs)))
        return known[row]

    witness: dict[tuple, tuple[str, dict]] = {}  # pair -> a row differing from the plain call in two factors
    for class_name in classes:
        for name, levels in factors.items():
            for other, other_levels in factors.items():
                for level in levels:
                    for second in other_levels:
                        changed = {name: level, other: second}
                        for pair in met(class_name, {**plain, **changed}):
                            witness.setdefault(pair, (class_name, changed))
    target = pairs.universe(caps) & set(witness)
    rng, rows, left = random.Random(0), [], set(target)

    def candidate(class_name: str, fixed: Mapping[str, Any] | None = None) -> Row:
        """The ``fixed`` levels, then each other factor in random order at the level that meets the most
        pairs still left."""
        levels = {**plain, **(fixed or {})}
        order = [name for name in factors if name not in (fixed or {})]
        rng.shuffle(order)
        for name in order:
            scored = [(len(met(class_name, {**levels, name: v}) & left), rng.random(), v) for v in factors[name]]
            levels[name] = max(scored, key=lambda t: (t[0], t[1]))[2]
        return Row(class_name, tuple(levels.items()))

    while left:
        # a few rows grown from scratch in random classes, one grown from a pair still left (its witness:
        # a pair that needs two factors at once, in the one class that has its part)
        seeds = [(rng.choice(classes), None) for _ in range(tries)] + [witness[rng.choice(sorted(left))]]
        gain, best = set(), None
        for class_name, fixed in seeds:
            row = candidate(class_name, fixed)
            covered = met(row.class_name, dict(row.levels)) & left
            if len(covered) > len(gain):
                gain, best = covered, row
        if not gain:
            break
        rows.append(best)
        left -= gain
    return Selection(tuple(rows), frozenset(target), frozenset(left))


@functools.lru_cache(maxsize=None)
def planned(framework: str) -> Selection:
    """The selection for the whole documented API of a framework (full capabilities): the suite's calls,
    the same for every implementation of that framework (their test ids compare across reports)."""
    from conformance.adapters.common import full_capabilities
    from conformance.registry import spec_class_names

    return select(full_capabilities(framework, spec_class_names(framework), methods=()), framework)


def fit(row: Row, caps) -> Row:
    """``row`` within what an implementation declares: a level it lacks becomes its factor's plain level
    (no input, flag off, a config value it supports); the class is kept (skipped by the caller if lacking)."""
    factors = _factors(caps, _framework(row.class_name))

    def level(name: str, value):
        if name not in factors:  # an input or flag it lacks: not passed
            return "off" if name in _INPUT_LEVELS else False
        return value if value in factors[name] else factors[name][0]

    return replace(row, levels=tuple((name, level(name, value)) for name, value in row.levels))


def _framework(class_name: str) -> str:
    return pairs._spec().classes[class_name].framework
