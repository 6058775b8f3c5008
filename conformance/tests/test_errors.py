"""Family 10, bad input (errors.yaml): each call-stage error clause, triggered by inputs generated
from its condition, raises the specified exception with a message holding the specified fragments
(the argument, the offending value, the allowed range or the expected and actual shapes)."""
from __future__ import annotations

import string

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.model_cache import documented_inputs
from conformance.tests._helpers import build, examples, run, spec_class
from spec import load_spec


def _bad_id(draw, name: str, limit: int) -> tuple[dict, int]:
    value = draw(st.sampled_from([limit, limit + 3, -1]))
    return {"arg": name}, value


def trigger(error_id: str, case, draw) -> tuple[dict, dict, dict] | None:
    """(inputs, run kwargs, placeholder values) that meet the clause's condition, or None when this
    family has no generator for it."""
    cfg, inputs, lead, seq = case.config, dict(case.inputs), case.lead, case.dims["seq"]
    ids = inputs["input_ids"]
    pos = (*[draw(st.integers(0, d - 1)) for d in lead], draw(st.integers(0, seq - 1)))
    limits = {"input_ids": "vocab_size", "token_type_ids": "type_vocab_size", "position_ids": "max_position_embeddings"}
    for name, field in limits.items():
        if error_id == f"error.{name}.out_of_range":
            value = draw(st.sampled_from([cfg[field], cfg[field] + 3, -1]))
            arr = inputs.get(name, np.zeros_like(ids)).copy()
            arr[pos] = value
            return dict(inputs, **{name: arr}), {}, {"value": value, field: cfg[field], "arg": name}
    if error_id == "error.sequence.too_long":
        n = cfg["max_position_embeddings"] + draw(st.integers(1, 3))
        long_ids = np.resize(ids, (*lead, n))
        values = {"actual_length": n, "max_position_embeddings": cfg["max_position_embeddings"]}
        return {"input_ids": long_ids}, {}, values
    if error_id == "error.shape.mismatch":
        name = draw(st.sampled_from(["attention_mask", "token_type_ids"]))
        bad = (np.ones((*lead, seq + 1), dtype=ids.dtype) if name == "attention_mask"
               else np.zeros((*lead, seq - 1), ids.dtype))
        return dict(inputs, **{name: bad}), {}, {"arg": name, "expected": tuple(ids.shape), "actual": tuple(bad.shape)}
    if error_id == "error.input_ids.rank":
        bad = ids.reshape(-1)
        return {"input_ids": bad}, {}, {"arg": "input_ids", "actual": tuple(bad.shape)}
    if error_id == "error.input_ids.dtype":
        bad = ids.astype(draw(st.sampled_from([np.float32, np.float64])))
        return {"input_ids": bad}, {}, {"arg": "input_ids", "actual_dtype": str(bad.dtype)}
    if error_id == "error.inputs.both_ids_and_embeds":
        embeds = np.zeros((*ids.shape, cfg["embedding_size"]), np.float32)
        return dict(inputs, inputs_embeds=embeds), {}, {}
    if error_id == "error.inputs.neither_ids_nor_embeds":
        return {k: v for k, v in inputs.items() if k != "input_ids"}, {}, {}
    if error_id == "error.head_mask.shape":
        shape = draw(st.sampled_from([(cfg["num_hidden_layers"] + 1, cfg["num_attention_heads"]),
                                      (cfg["num_attention_heads"] + 1,)]))
        return dict(inputs, head_mask=np.ones(shape, np.float32)), {}, {"arg": "head_mask", "actual": shape}
    if error_id == "error.inputs_embeds.width":
        width = cfg["embedding_size"] + draw(st.integers(1, 3))
        embeds = np.zeros((*ids.shape, width), np.float32)
        rest = {k: v for k, v in inputs.items() if k != "input_ids"}
        return dict(rest, inputs_embeds=embeds), {}, {"embedding_size": cfg["embedding_size"], "actual": width}
    if error_id == "error.encoder_hidden_states.shape":
        width = cfg["hidden_size"] + draw(st.integers(1, 3))
        states = np.zeros((lead[0], 3, width), np.float32)
        return dict(inputs, encoder_hidden_states=states), {}, {"arg": "encoder_hidden_states", "actual": states.shape}
    if error_id in ("error.labels.out_of_range", "error.labels.shape"):
        return _bad_labels(error_id, case, draw)
    if error_id in ("error.attention_mask.values", "error.attention_mask.dtype"):
        return _bad_mask(error_id, case, pos, draw)
    if error_id == "error.sequence.empty":
        empty = ids[..., :0]
        return dict(inputs, input_ids=empty, attention_mask=empty.copy(),
                    token_type_ids=empty.copy()), {}, {"arg": "input_ids", "actual": tuple(empty.shape)}
    if error_id == "error.past_key_values.shape" and case.class_name.startswith("TF"):
        return _bad_tf_cache(case, draw)
    return None


def _bad_mask(error_id: str, case, pos: tuple, draw):
    """An attention_mask with one entry that is not 0 or 1 (in an int or float mask), or a mask of a
    string dtype."""
    ids = case.inputs["input_ids"]
    if error_id == "error.attention_mask.dtype":
        bad = np.full(ids.shape, "1")
        return dict(case.inputs, attention_mask=bad), {}, {"arg": "attention_mask", "actual_dtype": str(bad.dtype)}
    value = draw(st.sampled_from([2, 3, -1, 0.5, float("nan")]), label="mask value")
    mask = np.ones(ids.shape, np.float32 if isinstance(value, float) else ids.dtype)
    mask[pos] = value
    return dict(case.inputs, attention_mask=mask), {}, {"arg": "attention_mask", "value": value}


def _bad_tf_cache(case, draw):
    """A TF past_key_values that is not num_hidden_layers (key, value) pairs of (B, N, Sp, D): one
    layer too many, or entries with the wrong head_dim or batch."""
    cfg, ids = case.config, case.inputs["input_ids"]
    batch, heads = ids.shape[0], cfg["num_attention_heads"]
    head_dim, layers, past = cfg["hidden_size"] // heads, cfg["num_hidden_layers"], draw(st.integers(1, 3))
    fault = draw(st.sampled_from(["layers", "head_dim", "batch"]), label="cache fault")
    shape = {"layers": (batch, heads, past, head_dim), "head_dim": (batch, heads, past, head_dim + 1),
             "batch": (batch + 1, heads, past, head_dim)}[fault]
    pairs = layers + 1 if fault == "layers" else layers
    cache = tuple((np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(pairs))
    mask = np.ones((batch, past + ids.shape[-1]), ids.dtype)
    values = {"arg": "past_key_values"} if fault == "layers" else {"arg": "past_key_values", "actual": shape}
    return {"input_ids": ids, "attention_mask": mask, "past_key_values": cache}, {}, values


#: Flax conditions met by calling the model object itself (init_cache, train without a key)
FLAX_MODEL_TRIGGERS = ("error.dropout_rng.missing", "error.past_key_values.shape", "error.cache.overflow")


def flax_trigger(error_id: str, handle, case, draw):
    """(a call of the Flax model that meets the condition, placeholder values) for the conditions that
    need the model itself: a missing dropout key, a cache from init_cache misused; else None."""
    model, ids = handle.native, case.inputs["input_ids"]
    if error_id == "error.dropout_rng.missing":
        return (lambda: model(**case.inputs, train=True)), {"arg": "dropout_rng"}
    batch, seq = ids.shape
    positions = np.broadcast_to(np.arange(seq), (batch, seq))
    if error_id == "error.past_key_values.shape":
        other = batch + draw(st.integers(1, 2))  # a cache made for another batch size
        return (lambda: model(ids, attention_mask=np.ones((batch, seq), np.int32), position_ids=positions,
                              past_key_values=model.init_cache(other, seq))), {"arg": "past_key_values"}
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

        return overflow, {"max_length": max_length, "actual_length": stop}
    return None


def _bad_labels(error_id: str, case, draw):
    sc = spec_class(case.class_name)
    if sc.loss == "question_answering" and error_id == "error.labels.out_of_range":
        return None  # QA positions are clamped, not rejected (loss.question_answering.clamp)
    labels = S.draw_labels(draw, case.class_name, case.config, case.lead, case.dims["seq"])
    name = sc.labels[0]
    good = labels[name]
    if error_id == "error.labels.shape":
        bad = np.concatenate([good, good[:1]], axis=0)
        return dict(case.inputs, **dict(labels, **{name: bad})), {}, {"arg": name, "actual": tuple(bad.shape)}
    if good.dtype.kind == "f":
        return None  # regression / multi-hot targets have no index range
    limit = {"masked_lm": case.config["vocab_size"], "causal_lm": case.config["vocab_size"],
             "token_classification": case.config["num_labels"], "sequence_classification": case.config["num_labels"],
             "multiple_choice": case.lead[-1], "pretraining": 2}[sc.loss]
    bad = good.copy()
    value = draw(st.sampled_from([limit, limit + 5]))
    bad.flat[0] = value
    return dict(case.inputs, **dict(labels, **{name: bad})), {}, {"arg": name, "value": value}


def fragments(error, values: dict) -> tuple[str, ...]:
    """The clause's message fragments whose placeholders this trigger knows, filled in."""
    out = []
    for frag in error.message:
        names = [n for _, n, _, _ in string.Formatter().parse(frag) if n]
        if all(n in values for n in names):
            out.append(frag.format(**{n: str(values[n]) for n in names}))
    return tuple(out)


def _exception_types(error) -> tuple[type, ...]:
    import builtins

    spec = load_spec()
    name = error.exception if error.exception not in spec.exceptions else spec.exceptions[error.exception].base
    return (getattr(builtins, name),)


#: config fields a condition needs before it can be met (cross-attention inputs need a cross-attention model)
_CONFIG_FOR = {"error.encoder_hidden_states.shape": {"is_decoder": True, "add_cross_attention": True},
               "error.past_key_values.shape": {"is_decoder": True}}
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
    native_call = adapter.framework == "flax" and error_id in FLAX_MODEL_TRIGGERS
    if native_call:
        caps.skip_unless("api:native")  # the condition is met by calling the model object itself
    made = None if native_call else trigger(error_id, case, data.draw)
    if not native_call and made is None:
        pytest.skip(f"{error_id}: no input generator for this condition in this family (covered elsewhere)")
    handle = build(model_cache, class_name, case.config)
    check.clause(*(d.id for d in load_spec().decisions.values() if error_id in d.affects))  # decided errors
    if native_call:
        native = flax_trigger(error_id, handle, case, data.draw)
        call, values = native
        with check.raises(_exception_types(error), clause=error_id, words=fragments(error, values)):
            result = call()
            check.that(False, clause=error_id, message=f"no error; the call returned {type(result).__name__}")
        return
    inputs, kwargs, values = made
    words = fragments(error, values)
    # a message that names an input the implementation lacks (inputs_embeds beside input_ids) is the
    # documented API's message: the clause is about that input too
    caps.skip_unless(*(f"input:{w}" for w in words if w in documented_inputs()))
    with check.raises(_exception_types(error), clause=error_id, words=words):
        result = run(model_cache, handle, inputs, **kwargs)
        bad = [k for k, v in result.fields.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
               and not np.all(np.isfinite(v))]
        check.that(not bad, clause=error_id, message=f"no error, and NaN/inf in {bad}")


#: construction-stage clauses: config overrides that meet each condition
_INIT_TRIGGERS = {"error.config.qa_num_labels": lambda draw: {"num_labels": draw(st.sampled_from([1, 3, 4]))},
                  "error.config.too_large": lambda draw: {}}
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
        with check.raises(_exception_types(error), clause=error_id, words=fragments(error, cfg)):
            adapter.build(class_name, cfg, device="cpu")


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
