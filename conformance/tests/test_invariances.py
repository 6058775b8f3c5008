"""Family 4, invariances (behaviour.yaml): right padding changes nothing at the real positions,
examples of a batch are independent and permutable, inference is deterministic, dropout acts only
in training mode, compiled equals eager, every TF input format gives the same outputs, and a TF
SavedModel's serving signature reproduces the eager outputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.tests._helpers import (always_fields, batch_rows, build, compare_outputs, compile_clause,
                                        examples, max_difference, mode_clause, run, seq_prefix, spec_class, thorough)

_ALL_OUTPUTS = {"output_attentions": True, "output_hidden_states": True}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _padding_buckets(class_name: str) -> tuple[int, ...]:
    """Buckets whose sequence-level outputs are padding invariant by the spec: for multiple choice,
    those summarising the first token (behaviour.padding_invariance)."""
    if "choices" not in spec_class(class_name).lead:
        return tuple(range(S.n_config_buckets()))
    return tuple(i for i in range(S.n_config_buckets()) if S.config_bucket(i, class_name)["summary_type"] == "first")


@examples(2)
@given(data=st.data())
def test_right_padding_changes_nothing(check, adapter, caps, class_name, model_cache, data):
    """Appending masked positions leaves the outputs at the original positions unchanged."""
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=_padding_buckets(class_name),
                             mask_kinds=("full", "right", "single")))
    seq = case.dims["seq"]
    keep = data.draw(st.integers(1, seq - 1), label="unpadded length")
    padded = {k: v.copy() for k, v in case.inputs.items()}
    padded["attention_mask"][..., keep:] = 0
    padded["input_ids"][..., keep:] = data.draw(st.integers(0, case.config["vocab_size"] - 1), label="pad id")
    short = {k: v[..., :keep] for k, v in padded.items()}
    handle = build(model_cache, class_name, case.config)
    long_out = run(model_cache, handle, padded, side=_ALL_OUTPUTS)
    short_out = run(model_cache, handle, short, side=_ALL_OUTPUTS)
    compare_outputs(check, long_out, short_out, class_name, clause="behaviour.padding_invariance",
                    index_actual=seq_prefix(keep))


@examples(1)
@given(data=st.data())
def test_padding_past_the_position_table_with_explicit_positions(check, adapter, caps, class_name, model_cache, data):
    """Absolute positions with explicit position_ids in range take a sequence longer than the position table
    (error.sequence.too_long binds omitted position_ids; error.sequence.beyond_distances relative types only):
    padding a sequence to past max_position_embeddings, positions restarting at 0, changes nothing at the
    unpadded positions."""
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, requires=("position_ids",),
                             buckets=_padding_buckets(class_name), mask_kinds=("full",),
                             overrides={"position_embedding_type": "absolute"}))
    seq, limit = case.dims["seq"], case.config["max_position_embeddings"]
    length = limit + data.draw(st.integers(1, 3), label="positions past the table")
    lead = case.inputs["input_ids"].shape[:-1]
    short = dict(case.inputs, position_ids=np.broadcast_to(np.arange(seq), (*lead, seq)).astype(np.int32))
    padded = {k: np.zeros((*lead, length), v.dtype) for k, v in short.items()}
    for k, v in short.items():
        padded[k][..., :seq] = v
    padded["position_ids"][..., seq:] = np.arange(length - seq) % limit  # restarting: every id in range
    handle = build(model_cache, class_name, case.config)
    short_out = run(model_cache, handle, short, side=_ALL_OUTPUTS)
    try:
        long_out = run(model_cache, handle, padded, side=_ALL_OUTPUTS)
    except Exception as err:  # noqa: BLE001 - any refusal of a valid call is the failure reported
        check.that(False, clause="error.sequence.too_long",
                   message=f"absolute positions, position_ids in range, length {length} > max_position_embeddings "
                           f"{limit}: raised {type(err).__name__}: {err}")
    compare_outputs(check, long_out, short_out, class_name, clause="behaviour.padding_invariance",
                    index_actual=seq_prefix(seq))


@examples(2)
@given(data=st.data())
def test_batch_independence_and_permutation(check, adapter, caps, class_name, model_cache, data):
    """Each example alone equals its row of the batch; permuting the batch permutes the outputs."""
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    batch = case.dims["batch"]
    choices = case.dims.get("choices", 1)
    whole = run(model_cache, handle, case.inputs, side=_ALL_OUTPUTS)
    order = np.asarray(data.draw(st.permutations(range(batch)), label="permutation"))
    permuted = run(model_cache, handle, {k: v[order] for k, v in case.inputs.items()}, side=_ALL_OUTPUTS)
    compare_outputs(check, permuted, whole, class_name, clause="behaviour.batch_invariance",
                    index_expected=batch_rows(order, choices))
    row = data.draw(st.integers(0, batch - 1), label="row alone")
    alone = run(model_cache, handle, {k: v[row:row + 1] for k, v in case.inputs.items()}, side=_ALL_OUTPUTS)
    compare_outputs(check, alone, whole, class_name, clause="behaviour.batch_invariance",
                    index_expected=batch_rows([row], choices))


@examples(1)
@given(data=st.data())
def test_inference_is_deterministic(check, adapter, caps, class_name, model_cache, data):
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    first = run(model_cache, handle, case.inputs, side=_ALL_OUTPUTS)
    second = run(model_cache, handle, case.inputs, side=_ALL_OUTPUTS)
    compare_outputs(check, second, first, class_name, clause="behaviour.determinism", exact=True)


def _training_changes_outputs(check, model_cache, handle, inputs: dict, data, clause: str, message: str):
    """A training-mode call (a drawn dropout seed) differs from inference somewhere; returns inference's run."""
    inference = run(model_cache, handle, inputs)
    training = run(model_cache, handle, inputs, train=True, seed=data.draw(st.integers(0, 2**16)))
    check.that(max_difference(training, inference, handle.class_name) > 1e-6, clause=clause, message=message)
    return inference


@examples(1)
@given(data=st.data())
def test_dropout_only_in_training(check, adapter, caps, class_name, model_cache, data):
    """With dropout > 0: training mode changes the outputs, inference equals the same weights with
    every dropout rate 0. With dropout 0: training mode equals inference."""
    clause = mode_clause(adapter)
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(0,)))
    cfg = case.config  # bucket configs keep the spec's default dropout rates (> 0)
    noisy = build(model_cache, class_name, cfg)
    inference = _training_changes_outputs(check, model_cache, noisy, case.inputs, data, clause,
                                          f"hidden_dropout_prob {cfg['hidden_dropout_prob']} in training mode "
                                          f"left every output unchanged: dropout is not applied")
    quiet = model_cache.get(class_name, S.no_dropout(cfg), weights=adapter.get_weights(noisy))
    compare_outputs(check, run(model_cache, quiet, case.inputs), inference, class_name, clause=clause)
    compare_outputs(check, run(model_cache, quiet, case.inputs, train=True, seed=1), inference, class_name,
                    clause=clause)


#: the heads whose dropout rate is classifier_dropout when set (architecture.*_head)
_CLASSIFIER_DROPOUT_HEADS = {"sequence_classification": "architecture.sequence_classification_head",
                             "token_classification": "architecture.token_classification_head"}


@examples(1)
@given(data=st.data())
def test_classifier_dropout_is_the_heads_own_rate(check, adapter, caps, class_name, model_cache, data):
    """With every other dropout rate 0, classifier_dropout > 0 alone makes training mode differ from
    inference: the head reads classifier_dropout when it is set, not hidden_dropout_prob."""
    clause = _CLASSIFIER_DROPOUT_HEADS.get(spec_class(class_name).loss)
    if clause is None:
        pytest.skip(f"{class_name}'s head has no classifier_dropout")
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(0,)))
    rate = data.draw(st.sampled_from([0.3, 0.6]), label="classifier_dropout")
    cfg = dict(S.no_dropout(case.config), classifier_dropout=rate)
    support = caps.supports_config(class_name, cfg)
    if not support.ok:
        caps.skip(support.reason)
    check.clause(clause, mode_clause(adapter))
    _training_changes_outputs(check, model_cache, build(model_cache, class_name, cfg), case.inputs, data, clause,
                              f"classifier_dropout={rate} (every other rate 0) left the training-mode outputs "
                              f"equal to inference: the head does not apply classifier_dropout")


@examples(1)
@given(data=st.data())
def test_compiled_equals_eager(check, adapter, caps, class_name, model_cache, data):
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(0, 1), shapes=S.SHAPE_BUCKETS[:1]))
    handle = build(model_cache, class_name, case.config)
    eager = run(model_cache, handle, case.inputs, side=_ALL_OUTPUTS)
    compiled = run(model_cache, handle, case.inputs, side=_ALL_OUTPUTS, compiled=True)
    compare_outputs(check, compiled, eager, class_name, clause=compile_clause(adapter), kind="compiled_vs_eager")


@examples(1)
@given(data=st.data())
def test_tf_input_formats_agree(check, adapter, caps, class_name, model_cache, data):
    if adapter.framework != "tf":
        pytest.skip("behaviour.tf.input_formats binds TF classes only")
    formats = [f for f in caps.input_formats if f != "kwargs"]
    if not formats:
        caps.skip("input formats other than keyword arguments (tensor, list, dict)")
    check.clause("behaviour.tf.input_formats")
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    reference = run(model_cache, handle, case.inputs)
    ids_only = run(model_cache, handle, {"input_ids": case.inputs["input_ids"]})
    for fmt in formats:
        inputs = {"input_ids": case.inputs["input_ids"]} if fmt == "tensor" else case.inputs
        got = run(model_cache, handle, inputs, input_format=fmt)
        compare_outputs(check, got, ids_only if fmt == "tensor" else reference, class_name,
                        clause="behaviour.tf.input_formats", exact=True)
    if "dict" in formats and not caps.lacking("input:inputs_embeds"):
        # a dict without input_ids: its first entry is not the ids, and the ids' slot stays empty
        ids = case.inputs["input_ids"]
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="inputs_embeds seed"))
        embeds = rng.normal(size=(*ids.shape, case.config["embedding_size"])).astype(np.float32)
        by_embeds = dict({k: v for k, v in case.inputs.items() if k != "input_ids"}, inputs_embeds=embeds)
        compare_outputs(check, run(model_cache, handle, by_embeds, input_format="dict"),
                        run(model_cache, handle, by_embeds), class_name, clause="behaviour.tf.input_formats",
                        exact=True)
    keywords = {k: v for k, v in case.inputs.items() if k != "input_ids"}
    if "list" in formats and keywords and not caps.lacking("api:native"):
        # a list entry of None gives no value: the keyword of that name stands (not a value given twice,
        # error.input.given_twice, nor a None that overrides it)
        names = spec_class(class_name).call_names
        entries = [case.inputs["input_ids"], *[None] * max(names.index(k) for k in keywords)]
        want, got = handle.native(case.inputs["input_ids"], **keywords), handle.native(entries, **keywords)
        for field, value in want.items():
            check.that(value is None or np.array_equal(np.asarray(got[field]), np.asarray(value)),
                       clause="behaviour.tf.input_formats",
                       message=f"{field} of a call with None list entries for {sorted(keywords)}, given as keywords, "
                               f"differs from the keyword call")


def serving_variants(inputs: dict, config: dict) -> dict:
    """The drawn int32 inputs and one variant per input and per axis, each differing from them where a
    serving signature could go wrong: input_ids shifted, the last key of row 0 masked (or unmasked),
    token_type_ids swapped between 0 and 1, and a second batch size and sequence length (the signature's
    dimensions are dynamic). Shape keys: lead (B,) or (B, C), S sequence."""
    ids, mask, types = (np.asarray(inputs[k]) for k in _INPUTS)
    variants = {"drawn": inputs}
    variants["input_ids"] = dict(inputs, input_ids=(ids + 1) % config["vocab_size"])
    flipped, first_row = mask.copy(), (0,) * (mask.ndim - 1)
    flipped[first_row + (-1,)] = 1 - flipped[first_row + (-1,)]
    if flipped[first_row].any():  # the row keeps a visible key
        variants["attention_mask"] = dict(inputs, attention_mask=flipped)
    if config["type_vocab_size"] > 1:
        variants["token_type_ids"] = dict(inputs, token_type_ids=np.where(types == 0, 1, 0).astype(types.dtype))
    # one more batch row (the first repeated) and one more position (a masked copy of the last one; the
    # strategies keep S + 1 within max_position_embeddings)
    variants["batch"] = {k: np.concatenate([v, v[:1]], axis=0) for k, v in inputs.items()}
    longer = {k: np.concatenate([v, v[..., -1:]], axis=-1) for k, v in inputs.items()}
    longer["attention_mask"][..., -1] = 0
    variants["sequence"] = longer
    return variants


@pytest.mark.family("persistence")
@examples(1)
@given(data=st.data())
def test_tf_saved_model_serving_reproduces_eager(check, adapter, caps, class_name, model_cache, data, tmp_path):
    """Export with the serving signature, reload, and call it with int32 inputs: the drawn ones, then each
    input varied in turn and a second batch size and sequence length (``serving_variants``). Every output
    field of each call equals the eager call's. Exporting costs seconds per class, so dev/ci export the
    bare encoder only and the thorough profile every class."""
    clause = "behaviour.tf.saved_model"
    if adapter.framework != "tf":
        pytest.skip(f"{clause} binds TF classes only")
    if not (thorough() or class_name.endswith("ElectraModel")):
        pytest.skip("the SavedModel round trip runs for the bare encoder only outside the thorough profile")
    caps.skip_unless("method:export_serving")
    import tensorflow as tf

    # two token types, so that varying token_type_ids can show an ignored one
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, overrides={"type_vocab_size": 2}))
    handle = build(model_cache, class_name, case.config)
    adapter.export_serving(handle, str(tmp_path))
    serving = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    for varied, inputs in serving_variants(case.inputs, case.config).items():
        served = serving(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})
        eager = run(model_cache, handle, inputs)
        for name in always_fields(class_name):
            check.that(name in served, clause=clause, message=f"the serving signature does not return {name}: "
                                                              f"{sorted(served)}")
            check.allclose(np.asarray(served[name]), eager.fields[name], clause=clause, kind="compiled_vs_eager",
                           field=name, what=f"{name} ({varied} inputs)")
