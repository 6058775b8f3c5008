"""Family 10, bad input (errors.yaml): each call-stage error clause, triggered by inputs generated
from its condition, raises the specified exception with a message holding the specified fragments
(the argument, the offending value, the allowed range or the expected and actual shapes).

A condition is met at every edge of its range in each example, not at one drawn value: an id just past
the upper bound (== the bound), further past it and just below zero; a mask one longer and one shorter;
each wrong head-mask shape; each kind of bad mask value; each dtype. A check that is off by one at one
edge cannot pass by drawing the other."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.model_cache import documented_inputs
from conformance.tests._helpers import (build, error_exceptions, error_fragments, eval_shape, examples, run,
                                        spec_class)
from spec import load_spec


#: one way of meeting a condition: (inputs, run kwargs, placeholder values of the message and "edge": which
#: edge of the condition it meets, for the report's coverage.error_edges)
Trigger = tuple[dict, dict, dict]


def triggers(error_id: str, case, draw) -> list[Trigger] | None:
    """Every edge of the clause's condition: a list of (inputs, run kwargs, placeholder values), or None
    when this family has no generator for it."""
    cfg, inputs, lead, seq = case.config, dict(case.inputs), case.lead, case.dims["seq"]
    ids = inputs["input_ids"]
    pos = (*[draw(st.integers(0, d - 1)) for d in lead], draw(st.integers(0, seq - 1)))
    limits = {"input_ids": "vocab_size", "token_type_ids": "type_vocab_size", "position_ids": "max_position_embeddings"}
    for name, field in limits.items():
        if error_id == f"error.{name}.out_of_range":
            out = []
            for edge, value in (("at the bound", cfg[field]), ("past the bound", cfg[field] + draw(st.integers(1, 3))),
                                ("below zero", -1)):
                arr = inputs.get(name, np.zeros_like(ids)).copy()
                arr[pos] = value
                out.append((dict(inputs, **{name: arr}), {},
                            {"value": value, field: cfg[field], "arg": name, "edge": edge}))
            return out
    if error_id == "error.sequence.too_long":
        out = []
        for edge, n in (("one past the bound", cfg["max_position_embeddings"] + 1),
                        ("further past the bound", cfg["max_position_embeddings"] + draw(st.integers(2, 4)))):
            values = {"actual_length": n, "max_position_embeddings": cfg["max_position_embeddings"], "edge": edge}
            out.append(({"input_ids": np.resize(ids, (*lead, n))}, {}, values))
        return out
    if error_id == "error.sequence.beyond_distances":  # a relative-attention config (_CONFIG_FOR)
        out = []
        for edge, n in (("one past the bound", cfg["max_position_embeddings"] + 1),
                        ("further past the bound", cfg["max_position_embeddings"] + draw(st.integers(2, 4)))):
            long_ids = np.resize(ids, (*lead, n))
            in_range = np.broadcast_to(np.arange(n) % cfg["max_position_embeddings"], long_ids.shape)
            values = {"actual_length": n, "max_position_embeddings": cfg["max_position_embeddings"], "edge": edge}
            out.append(({"input_ids": long_ids, "position_ids": in_range.astype(ids.dtype)}, {}, values))
        return out
    if error_id == "error.shape.mismatch":
        out = []
        for name in ("attention_mask", "token_type_ids"):
            for length in (seq + 1, seq - 1):
                bad = np.ones((*lead, length), ids.dtype) if name == "attention_mask" else np.zeros((*lead, length),
                                                                                                     ids.dtype)
                out.append((dict(inputs, **{name: bad}), {},
                            {"arg": name, "expected": tuple(ids.shape), "actual": tuple(bad.shape),
                             "edge": f"{name} one {'longer' if length > seq else 'shorter'}"}))
        return out
    if error_id == "error.input_ids.rank":
        return [({"input_ids": bad}, {}, {"arg": "input_ids", "actual": tuple(bad.shape), "edge": f"rank {bad.ndim}"})
                for bad in (ids.reshape(-1), ids[..., None])]
    if error_id == "error.input_ids.dtype":
        return [({"input_ids": bad}, {}, {"arg": "input_ids", "actual_dtype": str(bad.dtype), "edge": str(bad.dtype)})
                for bad in (ids.astype(np.float32), ids.astype(np.float64))]
    if error_id == "error.inputs.both_ids_and_embeds":
        embeds = np.zeros((*ids.shape, cfg["embedding_size"]), np.float32)
        return [(dict(inputs, inputs_embeds=embeds), {}, {"edge": "both passed"})]
    if error_id == "error.inputs.neither_ids_nor_embeds":
        return [({k: v for k, v in inputs.items() if k != "input_ids"}, {}, {"edge": "neither passed"})]
    if error_id == "error.head_mask.shape":
        layers, heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
        shapes = {"one layer more": (layers + 1, heads), "one head more": (layers, heads + 1),
                  "per head, one head more": (heads + 1,), "rank 3": (layers, heads, 1)}
        shapes.update({"one layer fewer": (layers - 1, heads)} if layers > 1 else {})
        return [(dict(inputs, head_mask=np.ones(shape, np.float32)), {}, {"arg": "head_mask", "actual": shape,
                                                                          "edge": edge})
                for edge, shape in shapes.items()]
    if error_id == "error.inputs_embeds.width":
        rest = {k: v for k, v in inputs.items() if k != "input_ids"}
        return [(dict(rest, inputs_embeds=np.zeros((*ids.shape, width), np.float32)), {},
                 {"embedding_size": cfg["embedding_size"], "actual": width,
                  "edge": "one wider" if width > cfg["embedding_size"] else "one narrower"})
                for width in (cfg["embedding_size"] + 1, cfg["embedding_size"] - 1) if width > 0]
    if error_id == "error.encoder_hidden_states.shape":
        out = []
        for width in (cfg["hidden_size"] + 1, cfg["hidden_size"] - 1):
            states = np.zeros((lead[0], 3, width), np.float32)
            out.append((dict(inputs, encoder_hidden_states=states), {},
                        {"arg": "encoder_hidden_states", "actual": states.shape,
                         "expected": (lead[0], 3, cfg["hidden_size"]),
                         "edge": "one wider" if width > cfg["hidden_size"] else "one narrower"}))
        return out
    if error_id in ("error.labels.out_of_range", "error.labels.shape"):
        return _bad_labels(error_id, case, draw)
    if error_id in ("error.attention_mask.values", "error.attention_mask.dtype"):
        return _bad_mask(error_id, case, pos)
    if error_id == "error.float_inputs.dtype":  # head_mask (L, N) and, where the class takes them, embeddings
        out = []
        head_mask = np.ones((cfg["num_hidden_layers"], cfg["num_attention_heads"]))
        for dtype in (np.complex64, np.str_):
            bad = head_mask.astype(dtype)
            out.append((dict(inputs, head_mask=bad), {}, {"arg": "head_mask", "actual_dtype": str(bad.dtype),
                                                          "edge": f"head_mask of dtype kind {bad.dtype.kind}"}))
        if "inputs_embeds" in spec_class(case.class_name).call_names:
            bad = np.ones((*ids.shape, cfg["embedding_size"]), np.complex64)
            without_ids = {k: v for k, v in inputs.items() if k != "input_ids"}
            out.append((dict(without_ids, inputs_embeds=bad), {},
                        {"arg": "inputs_embeds", "actual_dtype": str(bad.dtype), "edge": "complex inputs_embeds"}))
        return out
    if error_id == "error.sequence.empty":
        empty = ids[..., :0]
        return [(dict(inputs, input_ids=empty, attention_mask=empty.copy(), token_type_ids=empty.copy()), {},
                 {"arg": "input_ids", "actual": tuple(empty.shape), "edge": "length 0"})]
    if error_id == "error.past_key_values.shape" and case.class_name.startswith("TF"):
        return _bad_tf_cache(case, draw)
    return None


def _bad_mask(error_id: str, case, pos: tuple) -> list[Trigger]:
    """attention_masks with one entry that is not 0 or 1 (just above, far above, below, between, NaN; in
    an int or float mask), or masks of a string dtype."""
    ids = case.inputs["input_ids"]
    if error_id == "error.attention_mask.dtype":
        return [(dict(case.inputs, attention_mask=bad), {}, {"arg": "attention_mask", "actual_dtype": str(bad.dtype),
                                                              "edge": f"dtype kind {bad.dtype.kind}"})
                for bad in (np.full(ids.shape, "1"), np.full(ids.shape, b"1"))]
    out = []
    for edge, value in (("just above 1", 2), ("far above 1", 7), ("below 0", -1), ("between 0 and 1", 0.5),
                        ("NaN", float("nan"))):
        mask = np.ones(ids.shape, np.float32 if isinstance(value, float) else ids.dtype)
        mask[pos] = value
        out.append((dict(case.inputs, attention_mask=mask), {}, {"arg": "attention_mask", "value": value, "edge": edge}))
    return out


def _bad_tf_cache(case, draw):
    """A TF past_key_values that is not num_hidden_layers (key, value) pairs of (B, N, Sp, D): one
    layer too many, or entries with the wrong head_dim or batch."""
    cfg, ids = case.config, case.inputs["input_ids"]
    batch, heads = ids.shape[0], cfg["num_attention_heads"]
    head_dim, layers, past = cfg["hidden_size"] // heads, cfg["num_hidden_layers"], draw(st.integers(1, 3))
    out = []
    for fault in ("layers", "head_dim", "batch"):
        shape = {"layers": (batch, heads, past, head_dim), "head_dim": (batch, heads, past, head_dim + 1),
                 "batch": (batch + 1, heads, past, head_dim)}[fault]
        pairs = layers + 1 if fault == "layers" else layers
        cache = tuple((np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(pairs))
        mask = np.ones((batch, past + ids.shape[-1]), ids.dtype)
        values = {"arg": "past_key_values", "edge": f"wrong {fault}"}
        values.update({} if fault == "layers" else {"actual": shape})
        out.append(({"input_ids": ids, "attention_mask": mask, "past_key_values": cache}, {}, values))
    return out


#: conditions met by calling the model object itself: Python lists, which an adapter's run() would convert
#: (both frameworks); an input in the input dict or list and as a keyword (TF); init_cache and train without a
#: key (Flax)
NATIVE_TRIGGERS = ("error.input.ragged", "error.input.given_twice")
FLAX_MODEL_TRIGGERS = ("error.dropout_rng.missing", "error.past_key_values.shape", "error.cache.overflow")


def _ragged(array: np.ndarray) -> list:
    """``array`` as a nested Python list whose first innermost row is one entry longer than the others."""
    rows = array.tolist()
    first = rows
    while isinstance(first[0], list):
        first = first[0]
    first.append(first[-1])
    return rows


def _cache_of_another_model(cache, axis: int):
    """A Flax cache shaped like ``cache`` but with every cached key and value one longer on ``axis`` (-1: the
    head size, -2: the head count): what init_cache of a model with another head layout returns."""
    if not isinstance(cache, Mapping):
        return cache
    return {name: (np.zeros(tuple(n + (k == axis % len(v.shape)) for k, n in enumerate(v.shape)), v.dtype)
                   if name in ("cached_key", "cached_value") else _cache_of_another_model(v, axis))
            for name, v in cache.items()}


def _given_twice(model, case, formats) -> list:
    """Each input but input_ids (attention_mask sorts before it, token_type_ids after) given in the input dict,
    and in the input list where the implementation takes one, and again as a keyword with another valid value
    (its positions reversed)."""
    names = spec_class(case.class_name).call_names
    listed = names[:max(names.index(n) for n in case.inputs) + 1]  # the list runs in signature order
    out = []
    for name in (n for n in case.inputs if n != "input_ids"):
        again = {name: np.ascontiguousarray(case.inputs[name][..., ::-1])}
        out.append(((lambda again=again: model(dict(case.inputs), **again)),
                    {"arg": name, "edge": f"{name} in the dict"}))
        if "list" in formats:
            entries = [case.inputs.get(n) for n in listed]
            out.append(((lambda entries=entries, again=again: model(entries, **again)),
                        {"arg": name, "edge": f"{name} in the list"}))
    return out


def native_triggers(error_id: str, handle, case, draw, formats=()) -> list:
    """[(a call of the model object that meets the condition, placeholder values), ...], one per edge, for the
    conditions that need the model itself: a ragged list (each id input in turn, the others arrays), an input
    given twice (in the input dict or list, ``formats`` the implementation takes, and as a keyword), a missing
    dropout key, a cache from init_cache misused."""
    model, ids = handle.native, case.inputs["input_ids"]
    if error_id == "error.input.ragged":
        return [((lambda name=name: model(**dict(case.inputs, **{name: _ragged(case.inputs[name])}))),
                 {"arg": name, "edge": f"ragged {name}"}) for name in case.inputs]
    if error_id == "error.input.given_twice":
        return _given_twice(model, case, formats)
    if error_id == "error.dropout_rng.missing":
        return [((lambda: model(**case.inputs, train=True)), {"arg": "dropout_rng", "edge": "train without a key"})]
    batch, seq = ids.shape
    positions = np.broadcast_to(np.arange(seq), (batch, seq))
    mask = np.ones((batch, seq), np.int32)
    if error_id == "error.past_key_values.shape":
        other = batch + draw(st.integers(1, 2))  # a cache made for another batch size
        edges = [(lambda: model.init_cache(other, seq), "a cache for another batch"),
                 (lambda: _cache_of_another_model(model.init_cache(batch, seq), -1), "a cache for another head size"),
                 (lambda: _cache_of_another_model(model.init_cache(batch, seq), -2), "a cache with one head more")]
        return [((lambda make=make: model(ids, attention_mask=mask, position_ids=positions,
                                          past_key_values=make())), {"arg": "past_key_values", "edge": edge})
                for make, edge in edges]
    if error_id == "error.cache.overflow":
        max_length = draw(st.integers(1, seq - 1), label="init_cache max_length")
        prompt = draw(st.integers(0, max_length), label="positions decoded before the overflowing call")
        stop = min(seq, max_length + draw(st.integers(1, 2)))  # this call needs more positions than are left

        def overflow():
            cache = model.init_cache(batch, max_length)
            mask = np.ones((batch, max_length), np.int32)
            if prompt:
                cache = model(ids[:, :prompt], attention_mask=mask, position_ids=positions[:, :prompt],
                              past_key_values=cache).past_key_values
            return model(ids[:, prompt:stop], attention_mask=mask, position_ids=positions[:, prompt:stop],
                         past_key_values=cache)

        return [(overflow, {"max_length": max_length, "actual_length": stop,
                            "edge": "past max_length" + (" after a prompt" if prompt else "")})]
    raise AssertionError(f"{error_id} is a native trigger without a generator")


def _bad_labels(error_id: str, case, draw) -> list[Trigger] | None:
    sc = spec_class(case.class_name)
    if sc.loss == "question_answering" and error_id == "error.labels.out_of_range":
        return None  # QA positions are clamped, not rejected (loss.question_answering.clamp)
    labels = S.draw_labels(draw, case.class_name, case.config, case.lead, case.dims["seq"])
    name = sc.labels[0]
    good = labels[name]
    if error_id == "error.labels.shape":
        param = sc.call_arg(name)
        allowed = {eval_shape(shape, case.config, case.dims) for shape in (param.shape, *param.alt_shapes)}
        bad_ones = (np.concatenate([good, good[:1]], axis=0), good[1:], good[..., None])  # longer, shorter, rank + 1
        return [(dict(case.inputs, **dict(labels, **{name: bad})), {}, {"arg": name, "actual": tuple(bad.shape),
                                                                          "edge": edge})
                for edge, bad in zip(("one longer", "one shorter", "rank + 1"), bad_ones) if bad.shape not in allowed]
    if good.dtype.kind == "f":
        return None  # regression / multi-hot targets have no index range
    limit = {"masked_lm": case.config["vocab_size"], "causal_lm": case.config["vocab_size"],
             "token_classification": case.config["num_labels"], "sequence_classification": case.config["num_labels"],
             "multiple_choice": case.lead[-1], "pretraining": 2}[sc.loss]
    out = []
    for edge, value in (("at the bound", limit), ("past the bound", limit + 5), ("below zero", -1)):  # not the ignore index
        bad = good.copy()
        bad.flat[0] = value
        out.append((dict(case.inputs, **dict(labels, **{name: bad})), {}, {"arg": name, "value": value, "edge": edge}))
    return out


def _edge(values: dict) -> str:
    """Which edge of the condition a call met (its name, values["edge"], and the values), for messages."""
    return ", ".join(f"{k}={v}" for k, v in values.items())


#: config fields a condition needs before it can be met (cross-attention inputs need a cross-attention model)
_CONFIG_FOR = {"error.encoder_hidden_states.shape": {"is_decoder": True, "add_cross_attention": True},
               "error.past_key_values.shape": {"is_decoder": True},
               "error.sequence.beyond_distances": {"position_embedding_type": "relative_key"}}
_CALL_ERRORS = [e for e in load_spec().errors.values() if e.when == "call"]


@pytest.mark.parametrize("error_id", [e.id for e in _CALL_ERRORS])
@examples(1)
@given(data=st.data())
def test_bad_input_raises(check, adapter, caps, class_name, model_cache, error_id, data):
    error = load_spec().errors[error_id]
    if not error.applies_to(class_name, adapter.framework):
        pytest.skip(f"{error_id} does not bind {class_name}")
    needs = _CONFIG_FOR.get(error_id, {})
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "attention_mask", "token_type_ids"), buckets=(0,),
                             overrides=needs))
    native_call = error_id in NATIVE_TRIGGERS or (adapter.framework == "flax" and error_id in FLAX_MODEL_TRIGGERS)
    if native_call:
        caps.skip_unless("api:native")  # the condition is met by calling the model object itself
        if error_id == "error.input.ragged":
            caps.skip_unless("api:python_lists")  # only a model that takes lists can refuse a ragged one
        if error_id == "error.input.given_twice":
            caps.skip_unless("format:dict")  # a value can be given twice only beside the input dict or list
    made = None if native_call else triggers(error_id, case, data.draw)
    if not native_call and made is None:
        pytest.skip(f"{error_id}: no input generator for this condition in this family (covered elsewhere)")
    handle = build(model_cache, class_name, case.config)
    check.clause(*(d.id for d in load_spec().decisions.values() if error_id in d.affects))  # decided errors
    if native_call:
        for call, values in native_triggers(error_id, handle, case, data.draw, caps.input_formats):  # every edge
            with check.raises(error_exceptions(error), clause=error_id, words=error_fragments(error, values),
                              edge=values["edge"]):
                result = call()
                check.that(False, clause=error_id, message=f"no error; the call returned {type(result).__name__}")
        return
    for inputs, kwargs, values in made:  # every edge of the condition
        words = error_fragments(error, values)
        # a message that names an input the implementation lacks (inputs_embeds beside input_ids) is the
        # documented API's message: the clause is about that input too
        caps.skip_unless(*(f"input:{w}" for w in words if w in documented_inputs()))
        with check.raises(error_exceptions(error), clause=error_id, words=words, edge=values["edge"]):
            result = run(model_cache, handle, inputs, **kwargs)
            bad = [k for k, v in result.fields.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                   and not np.all(np.isfinite(v))]
            check.that(not bad, clause=error_id, message=f"no error, and NaN/inf in {bad} ({_edge(values)})")


#: construction-stage clauses: config overrides that meet each condition
_INIT_TRIGGERS = {"error.config.qa_num_labels": lambda draw: {"num_labels": draw(st.sampled_from([1, 3, 4]))},
                  "error.config.too_large": lambda draw: {}}
#: the edge a construction-stage trigger meets, by the config it made
_INIT_EDGES = {"error.config.qa_num_labels": lambda cfg: f"num_labels={cfg['num_labels']}",
               "error.config.too_large": lambda cfg: "over the parameter-memory limit"}
#: construction-stage clauses met through the environment: a parameter-memory limit (bytes) that even
#: the tiny test model exceeds, so that no implementation allocates anything large to be checked
_INIT_ENVIRONMENT = {"error.config.too_large": {"ELECTRA_MAX_PARAMETER_BYTES": "16"}}


@pytest.mark.parametrize("error_id", [e.id for e in load_spec().errors.values() if e.when == "init"])
@examples(1)
@given(data=st.data())
def test_bad_construction_raises(check, adapter, caps, class_name, error_id, data):
    error = load_spec().errors[error_id]
    if not error.applies_to(class_name, adapter.framework):
        pytest.skip(f"{error_id} does not bind {class_name}")
    if error_id not in _INIT_TRIGGERS:
        pytest.skip(f"{error_id}: no config generator for this condition in this family")
    cfg = S.config_bucket(0, class_name, caps, **_INIT_TRIGGERS[error_id](data.draw))
    with pytest.MonkeyPatch.context() as env:
        for name, value in _INIT_ENVIRONMENT.get(error_id, {}).items():
            env.setenv(name, value)
        with check.raises(error_exceptions(error), clause=error_id, words=error_fragments(error, cfg),
                          edge=_INIT_EDGES[error_id](cfg)):
            adapter.build(class_name, cfg, device="cpu")


#: error.init_cache.arguments, by edge: (config overrides of a decoder bucket, batch_size, max_length, the field or
#: argument at fault)
_INIT_CACHE_EDGES = {
    "not_decoder": ({"is_decoder": False}, 2, 4, "is_decoder"),
    "use_cache_off": ({"use_cache": False}, 2, 4, "use_cache"),
    "batch_size_zero": ({}, 0, 4, "batch_size"),
    "max_length_zero": ({}, 2, 0, "max_length"),
    "max_length_negative": ({}, 2, -1, "max_length"),
    "max_length_fractional": ({}, 2, 2.5, "max_length"),
}


@pytest.mark.parametrize("edge", list(_INIT_CACHE_EDGES))
def test_flax_init_cache_refuses_bad_arguments(check, adapter, caps, model_cache, edge):
    """init_cache on a model that cannot cache, or with a batch or length that is not a positive int,
    raises error.init_cache.arguments naming the argument (and the value); at the length edge a cache of
    one position is accepted."""
    clause, class_name = "error.init_cache.arguments", "FlaxElectraForCausalLM"
    if adapter.framework != "flax":
        pytest.skip(f"{clause} binds Flax classes only")
    caps.skip_unless(f"class:{class_name}", "api:native")  # the test calls the model object itself
    overrides, batch, length, arg = _INIT_CACHE_EDGES[edge]
    cfg = S.config_bucket(0, class_name, caps, **{"is_decoder": True, **overrides})
    model = build(model_cache, class_name, cfg).native
    error = load_spec().errors[clause]
    values = {"arg": arg, **({"value": {"batch_size": batch, "max_length": length}[arg]}
                             if arg in ("batch_size", "max_length") else {})}
    with check.raises(error_exceptions(error), clause=clause, words=error_fragments(error, values), edge=edge):
        model.init_cache(batch, length)
    if edge == "max_length_zero":
        try:
            model.init_cache(batch, 1)
        except Exception as err:  # noqa: BLE001 - the finding: the edge itself must be accepted
            check.fail(clause, f"init_cache({batch}, 1) raised {type(err).__name__}: {err}")


@examples(1)
@given(data=st.data())
def test_tf_dict_input_with_unknown_key_raises(check, adapter, caps, class_name, model_cache, data):
    if adapter.framework != "tf":
        pytest.skip("behaviour.tf.dict_unknown_key binds TF classes only")
    caps.skip_unless("format:dict")
    case = data.draw(S.cases(caps, class_name, args=("input_ids",), buckets=(0,)))
    key = data.draw(st.sampled_from(["input_idz", "mask", "labels_"]), label="unknown key")
    handle = build(model_cache, class_name, case.config)
    with check.raises(ValueError, clause="behaviour.tf.dict_unknown_key", words=(key,)):
        run(model_cache, handle, dict(case.inputs, **{key: case.inputs["input_ids"]}), input_format="dict")
