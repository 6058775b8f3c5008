"""Calls chosen to exercise the pairs of features the spec gives a meaning to (coverage.pairs), by
pairwise selection: a greedy all-pairs covering (each new call is the candidate that meets the most pairs
not yet met), restricted to the pairs that meet in the call's class (combinations.yaml, conformance.pairs).

A call is a ``Row``: one level per factor. Factors are every feature the float64 NumPy model
(numpy_model.encoder and head_outputs) and the NumPy losses recompute: the config options (the multiple-
choice summary's included), the inputs (ids or inputs_embeds, positions, the padding mask, the head mask in
each form, encoder states and their mask, a key/value cache, the head's labels), the output flags
(return_dict: the tuple form) and the class. Token types are always passed. A level that cannot be made in
a row is left out of its call, never faked: cross-attention and a cache make the model a decoder, encoder
states are passed only to a model with cross-attention, a cache is not used with labels or multiple choice.

Shape keys: B batch, C choices, S sequence, Se encoder sequence, L layers, N heads, E embedding, H hidden.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from conformance import pairs, strategies as S

BATCH, CHOICES, SEQUENCE, ENCODER_SEQUENCE = 2, 2, 5, 3
#: the positions a cached call's first call takes; the second call takes the other S - PREFIX at once
#: (a chunk of several tokens after a cache: decision.relative_positions_with_cache)
PREFIX = 2
#: factor -> its levels; the first level is the plain call (no input, flag off, default config)
_INPUT_LEVELS = {"inputs_embeds": ("off", "on"),
                 "position_ids": ("off", "on"),
                 "attention_mask": ("off", "full", "left", "right"),
                 "head_mask": ("off", "per_layer", "per_head", "per_layer_fractional", "per_head_fractional"),
                 "encoder_hidden_states": ("off", "on"),
                 "encoder_attention_mask": ("off", "full", "padded"),
                 "past_key_values": ("off", "on"),
                 "labels": ("off", "on")}
_FLAGS = ("output_attentions", "output_hidden_states", "use_cache", "return_dict")
_DERIVED = ("embedding_projection", "two_or_more_layers", "default_layer_norm_eps")
_CONFIG = ("hidden_act", "position_embedding_type", "is_decoder", "tie_word_embeddings", "add_cross_attention",
           "summary_type", "summary_use_proj", "summary_activation", "problem_type")
#: the most factors a call sets to a level other than the plain one: few unusual features per call, so that a
#: defect of one feature (an expected failure on one implementation) hides few pairs of the others
MAX_UNUSUAL = 4
#: calls every selection starts with (class name suffix, levels): corners where one defect is known to show
#: and that a pairwise covering may meet only in a call that hides it. A decoder with a left-padded mask and
#: no cache: its first query sees only padded keys (decision.mask_value; a cached call compares the rows
#: after the prefix only, so it meets the pair without showing the defect).
CORNERS = (("ElectraModel", {"is_decoder": True, "attention_mask": "left"}),)
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
        shown = [f"{k}={v}" for k, v in self.levels if v not in ("off", False, None) or k in _DERIVED]
        return f"{self.class_name}[{', '.join(shown)}]"


@dataclass(frozen=True)
class Call:
    """What a row's test passes: full-length inputs ((B, S), or (B, C, S) for multiple choice), the flags
    switched on, ``prefix`` (a cached call: inputs[..., :prefix] go through a first call whose key/value
    cache the second call, on the rest, takes; 0: one call with a new cache; None: no cache) and whether the
    tuple form (return_dict=False) is asked."""
    inputs: dict[str, Any]
    flags: dict[str, bool] = field(default_factory=dict)
    prefix: int | None = None
    tuple_form: bool = False

    def features(self, config: Mapping[str, Any]) -> frozenset:
        """The features the model cache records for this call (pairs.call_features)."""
        inputs = {**self.inputs, **({"past_key_values": self.prefix} if self.prefix is not None else {})}
        return pairs.call_features(config, inputs, {**self.flags, **({"return_dict": True} if self.tuple_form else {})})


def _implied(levels: Mapping[str, Any]) -> dict:
    """A row's levels with what they need: an encoder mask needs encoder states, which need
    cross-attention, which (like a cache) needs a decoder; a pair of the mask with another feature is then
    one change away from the plain call."""
    levels = dict(levels)
    if levels.get("encoder_attention_mask", "off") != "off":
        levels["encoder_hidden_states"] = "on"
    if levels.get("encoder_hidden_states", "off") == "on" and "add_cross_attention" in levels:
        levels["add_cross_attention"] = True
    if (levels.get("add_cross_attention") or levels.get("past_key_values", "off") == "on") and "is_decoder" in levels:
        levels["is_decoder"] = True
    return levels


def _consistent(levels: Mapping[str, Any]) -> dict:
    """Levels an implementation cannot combine turned off: encoder inputs without cross-attention, a cache
    without a decoder (after ``fit`` lowered what the implementation lacks)."""
    levels = dict(levels)
    if not levels.get("add_cross_attention", False):
        levels.update({k: "off" for k in ("encoder_hidden_states", "encoder_attention_mask") if k in levels})
    if not levels.get("is_decoder", False):
        levels.update({k: "off" for k in ("past_key_values",) if k in levels})
    return levels


def config_of(row: Row, caps, base: Mapping[str, Any] | None = None) -> dict:
    """The model config of a row: bucket 0's sizes (``base``: that config, when the caller has it), the row's
    options and derived options."""
    levels = dict(row.levels)
    cfg = dict(base) if base is not None else S.config_bucket(0, row.class_name, caps)
    cfg.update({name: levels[name] for name in _CONFIG if name in levels})
    if levels.get("embedding_projection"):
        cfg["embedding_size"] = cfg["hidden_size"] // 2
    cfg["num_hidden_layers"] = 2 if levels.get("two_or_more_layers", True) else 1
    default_eps = pairs._config_options()[0]["layer_norm_eps"]
    cfg["layer_norm_eps"] = default_eps if levels.get("default_layer_norm_eps", True) else OTHER_EPS
    cfg["hidden_dropout_prob"] = cfg["attention_probs_dropout_prob"] = 0.0
    return cfg


def call_of(row: Row, cfg: Mapping[str, Any], caps_inputs, seed: int = 0) -> Call:
    """The call of a row: ids (or inputs_embeds drawn N(0, 1)) and token types (always passed: what an
    omitted one means is the defaults family's, and a port that gets it wrong would fail every call here),
    positions (a permutation of 0..S-1 per example, offset by 1), a 0/1 mask padded on the given side, a
    head mask (L, N) or (N,) of 0/1 or with 0.5, encoder states (B, Se, H) with a full or padded mask, the
    head's labels (with ignored entries where its loss has them), the flags; only the inputs the class takes."""
    rng = np.random.default_rng(seed)
    levels = dict(row.levels)
    spec_cls = pairs._spec().classes[row.class_name]
    takes = set(spec_cls.call_names) & set(caps_inputs)
    lead = (BATCH, CHOICES) if "choices" in spec_cls.lead else (BATCH,)
    shape = (*lead, SEQUENCE)
    inputs: dict[str, Any] = {}
    if levels.get("inputs_embeds", "off") == "on" and "inputs_embeds" in takes:
        inputs["inputs_embeds"] = rng.normal(0.0, 1.0, (*shape, cfg["embedding_size"])).astype(np.float32)
    else:
        inputs["input_ids"] = rng.integers(0, cfg["vocab_size"], shape).astype(np.int32)
    if "token_type_ids" in takes:
        inputs["token_type_ids"] = rng.integers(0, cfg["type_vocab_size"], shape).astype(np.int32)
    if levels.get("position_ids", "off") == "on" and "position_ids" in takes:
        inputs["position_ids"] = (np.stack([rng.permutation(SEQUENCE) for _ in range(int(np.prod(lead)))]) + 1
                                  ).reshape(shape).astype(np.int32)
    mask = levels.get("attention_mask", "off")
    if mask != "off" and "attention_mask" in takes:
        m = np.ones(shape, np.int32)
        if mask == "left":
            m[..., :2] = 0
        elif mask == "right":
            m[..., -2:] = 0
        inputs["attention_mask"] = m
    head = levels.get("head_mask", "off")
    if head != "off" and "head_mask" in takes:
        layers, heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
        values = np.ones((layers, heads), np.float32)
        values[-1, 0] = 0.0  # one head off in the last layer: per-layer rows differ
        if head.endswith("fractional"):
            values[0, heads - 1] = 0.5
        inputs["head_mask"] = values if head.startswith("per_layer") else values[-1]
    if cfg.get("add_cross_attention") and levels.get("encoder_hidden_states", "off") == "on" \
            and "encoder_hidden_states" in takes:
        rows = int(np.prod(lead))
        inputs["encoder_hidden_states"] = rng.normal(0.0, 1.0, (rows, ENCODER_SEQUENCE, cfg["hidden_size"])
                                                     ).astype(np.float32)
        enc_mask = levels.get("encoder_attention_mask", "off")
        if enc_mask != "off" and "encoder_attention_mask" in takes:
            m = np.ones((rows, ENCODER_SEQUENCE), np.int32)
            m[0, -1] = 0 if enc_mask == "padded" else 1
            inputs["encoder_attention_mask"] = m
    cached = levels.get("past_key_values", "off") == "on" and "past_key_values" in takes and len(lead) == 1
    if levels.get("labels", "off") == "on" and not cached and spec_cls.loss is not None:
        inputs.update({k: v for k, v in _labels(spec_cls.loss, cfg, lead, rng).items() if k in takes})
    flags = {name: True for name in _FLAGS if name != "return_dict" and levels.get(name, False)
             and name in spec_cls.call_names}
    # a class whose output returns no cache (Flax heads: decision.flax_past_key_values_on_every_head) takes a
    # new one and the whole sequence in one call
    returns_cache = "past_key_values" in pairs._spec().output_of(row.class_name).field_names
    prefix = (PREFIX if returns_cache else 0) if cached else None
    return Call(inputs, flags, prefix, bool(levels.get("return_dict", False)))


def _labels(head: str, cfg: Mapping[str, Any], lead: tuple[int, ...], rng) -> dict[str, np.ndarray]:
    """The label arguments of a losses.yaml head for inputs of ``lead`` + (S,): token labels with the
    second position of every row ignored, sequence-classification labels of the config's problem type
    (inferred from num_labels when it has none), one question-answering position past the sequence."""
    batch, ignore = lead[0], pairs._spec().sections["losses"].ignore_index
    if head in ("masked_lm", "causal_lm", "token_classification"):
        y = rng.integers(0, cfg["vocab_size"] if head != "token_classification" else cfg["num_labels"],
                         (batch, SEQUENCE))
        y[:, 1] = ignore
        return {"labels": y.astype(np.int32)}
    if head == "pretraining":
        return {"labels": rng.integers(0, 2, (batch, SEQUENCE)).astype(np.int32)}
    if head == "multiple_choice":
        return {"labels": rng.integers(0, lead[1], (batch,)).astype(np.int32)}
    if head == "question_answering":
        start = rng.integers(0, SEQUENCE, (batch,))
        start[0] = SEQUENCE + 1  # clamped to S, then ignored (loss.question_answering.clamp)
        return {"start_positions": start.astype(np.int32),
                "end_positions": rng.integers(0, SEQUENCE, (batch,)).astype(np.int32)}
    k, problem = cfg["num_labels"], cfg.get("problem_type")
    if problem == "regression" or (problem is None and k == 1):
        return {"labels": rng.normal(0.0, 1.0, (batch, k) if k > 1 else (batch,)).astype(np.float32)}
    if problem == "multi_label_classification":
        return {"labels": rng.integers(0, 2, (batch, k)).astype(np.float32)}
    return {"labels": rng.integers(0, k, (batch,)).astype(np.int32)}


#: the factor that stands for the label arguments of each head (labels, or start and end positions)
_LABEL_INPUTS = ("labels", "start_positions", "end_positions")
#: the optional adapter method a factor's level needs (the cache goes through two calls)
_NEEDS_METHOD = {"past_key_values": "run_cached"}


def _factors(caps, framework: str) -> dict[str, tuple]:
    """The factors the implementation supports, each with the levels it supports (the plain level first)."""
    spec = pairs._spec()
    out: dict[str, tuple] = {}
    for name in _CONFIG:
        f = spec.config.field(name)
        values = ((f.default, *(c for c in f.choices if c != f.default)) if f.choices is not None
                  else (f.default, not f.default))
        allowed = tuple(v for v in values if v in caps.config.get(name, values))
        if allowed:
            out[name] = allowed
    out.update({name: (True, False) for name in _DERIVED})
    if OTHER_EPS not in caps.config.get("layer_norm_eps", (OTHER_EPS,)):
        out["default_layer_norm_eps"] = (True,)
    for name, levels in _INPUT_LEVELS.items():
        taken = caps.inputs & set(_LABEL_INPUTS) if name == "labels" else {name} & caps.inputs
        if taken and _NEEDS_METHOD.get(name, "") in caps.methods | {""}:
            out[name] = levels
    out.update({name: (False, True) for name in _FLAGS if name in caps.flags})
    return out


def _classes(caps, framework: str) -> tuple[str, ...]:
    spec = pairs._spec()
    return tuple(c for c in caps.classes if spec.classes[c].framework == framework)


@dataclass(frozen=True)
class Selection:
    rows: tuple[Row, ...]  # the calls, in the order chosen
    target: frozenset  # the universe's pairs (conformance.pairs.universe) some row could meet
    unreached: frozenset  # those no chosen row meets (empty unless the search gave up)


def select(caps, framework: str, tries: int = 4, max_unusual: int = MAX_UNUSUAL) -> Selection:
    """The calls that together meet every pair of the implementation's universe that the factors can reach
    (deterministic for the same capabilities)."""
    factors, classes = _factors(caps, framework), _classes(caps, framework)
    plain = {name: levels[0] for name, levels in factors.items()}
    known: dict[Row, set] = {}
    bases = {class_name: S.config_bucket(0, class_name, caps) for class_name in classes}

    def met(class_name: str, levels: Mapping[str, Any]) -> set[tuple[str, str]]:
        row = Row(class_name, tuple(_implied(levels).items()))
        if row not in known:
            cfg = config_of(row, caps, bases[class_name])
            known[row] = pairs.met(class_name, call_of(row, cfg, caps.inputs).features(cfg))
        return known[row]

    witness: dict[tuple, tuple[str, dict]] = {}  # pair -> a row differing from the plain call in two factors
    names = list(factors)
    for class_name in classes:
        for i, name in enumerate(names):
            for other in names[i:]:
                levels, other_levels = factors[name], factors[other]
                for level in levels:
                    for second in other_levels:
                        changed = {name: level, other: second}
                        for pair in met(class_name, {**plain, **changed}):
                            witness.setdefault(pair, (class_name, changed))
    target = pairs.universe(caps) & set(witness)
    rng, rows, left = random.Random(0), [], set(target)
    for class_suffix, corner in CORNERS:  # the explicit corners first, in the first class they fit
        class_name = next((c for c in classes if c.endswith(class_suffix)), None)
        if class_name is not None and all(corner[k] in factors.get(k, ()) for k in corner):
            row = Row(class_name, tuple(_implied({**plain, **corner}).items()))
            rows.append(row)
            left -= met(class_name, dict(row.levels))

    def candidate(class_name: str, fixed: Mapping[str, Any] | None = None) -> Row:
        """The ``fixed`` levels, then each other factor in random order at the level that meets the most
        pairs still left, with at most ``max_unusual`` factors away from their plain level."""
        levels = {**plain, **(fixed or {})}
        order = [name for name in factors if name not in (fixed or {})]
        rng.shuffle(order)
        for name in order:
            implied = _implied(levels)
            unusual = sum(implied[n] != plain[n] for n in factors)
            choices = factors[name] if unusual < max_unusual else (plain[name],)
            # the level meeting the most pairs still left; the plain one when no other meets more (a level that
            # adds nothing would only stack an unusual feature onto the call)
            scored = [(len(met(class_name, {**levels, name: v}) & left), v == plain[name], rng.random(), v)
                      for v in choices]
            levels[name] = max(scored, key=lambda t: t[:3])[3]
        return Row(class_name, tuple(_implied(levels).items()))

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
    return Selection(tuple(_every_alike_value(rows, factors, classes, plain)), frozenset(target), frozenset(left))


def _every_alike_value(rows: list[Row], factors: Mapping[str, tuple], classes: tuple[str, ...],
                       plain: Mapping[str, Any]) -> list[Row]:
    """``rows`` with every level of an option whose values pairs count by group (combinations.yaml alike) in
    some call: a level no row has takes the place of another of its group in a row where that one is not
    the only use (the row meets the same pairs), else it gets the plain call of the first class it acts in."""
    alike = pairs._spec().sections["combinations"].alike
    rows = list(rows)
    for name in (n for n in factors if n in alike):
        group_of = alike[name].group_of
        for level in factors[name]:
            uses = [row.level(name) for row in rows]
            if level in uses:
                continue
            spare = next((i for i, row in enumerate(rows) if group_of(str(row.level(name))) == group_of(str(level))
                          and uses.count(row.level(name)) > 1), None)
            if spare is not None:
                rows[spare] = replace(rows[spare], levels=tuple((k, level if k == name else v)
                                                                for k, v in rows[spare].levels))
                continue
            class_name = next((c for c in classes if pairs.acts(c, f"{name}={level}")), None)
            if class_name is not None:
                rows.append(Row(class_name, tuple(_implied({**plain, name: level}).items())))
    return rows


@functools.lru_cache(maxsize=None)
def planned(framework: str) -> Selection:
    """The selection for the whole documented API of a framework (full capabilities): the suite's calls,
    the same for every implementation of that framework (their test ids compare across reports)."""
    from conformance.adapters.common import full_capabilities
    from conformance.registry import spec_class_names

    return select(full_capabilities(framework, spec_class_names(framework), methods=tuple(_NEEDS_METHOD.values())),
                  framework)


def fit(row: Row, caps) -> Row:
    """``row`` within what an implementation declares: a level it lacks becomes its factor's plain level
    (no input, flag off, a config value it supports); the class is kept (skipped by the caller if lacking)."""
    factors = _factors(caps, _framework(row.class_name))

    def level(name: str, value):
        if name not in factors:  # an input, flag or method it lacks: not passed
            return "off" if name in _INPUT_LEVELS else False
        return value if value in factors[name] else factors[name][0]

    return replace(row, levels=tuple(_consistent({name: level(name, value) for name, value in row.levels}).items()))


def _framework(class_name: str) -> str:
    return pairs._spec().classes[class_name].framework
