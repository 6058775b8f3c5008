"""impl_tf's calling conventions: signatures per spec/data/classes.yaml, the four input formats, id
dtypes, numpy vs tensors, return_dict / output flags and their config fallbacks, output classes,
activations, and bad input raising the errors of spec/data/errors.yaml."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf

import impl_tf
from conformance.checks import own_message
from spec import load_spec
from tf_helpers import tiny_config

SPEC = load_spec()
TF_CLASSES = [c.name for c in SPEC.classes_for("tf")]


def _model(class_name, **overrides):
    if class_name == "TFElectraForQuestionAnswering":
        overrides.setdefault("num_labels", 2)
    return getattr(impl_tf, class_name)(tiny_config(**overrides))


def _ids(class_name, seq=6, seed=0):
    lead = (2, 3) if class_name == "TFElectraForMultipleChoice" else (2,)
    rng = np.random.RandomState(seed)
    return rng.randint(0, 40, lead + (seq,)), rng.randint(0, 3, lead + (seq,))


def test_everything_is_importable_from_the_package():
    for name in TF_CLASSES + ["ElectraConfig"] + [SPEC.classes[c].output_class for c in TF_CLASSES]:
        assert hasattr(impl_tf, name), name


@pytest.mark.parametrize("class_name", TF_CLASSES)
def test_call_signature_follows_the_spec(class_name):
    params = list(inspect.signature(getattr(impl_tf, class_name).call).parameters.values())[1:]
    spec_call = SPEC.classes[class_name].call
    assert [p.name for p in params] == [p.name for p in spec_call]
    for p, s in zip(params, spec_call):
        expected = False if s.default == "false" else None  # every other default is "omitted" (None)
        assert p.default is expected, (p.name, p.default, s.default)


@pytest.mark.parametrize("class_name", TF_CLASSES)
def test_the_four_input_formats_give_identical_results(class_name):
    model = _model(class_name)
    ids, types = _ids(class_name)
    mask = np.ones_like(ids)
    mask[..., -1] = 0
    reference = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    first = next(iter(reference.values()))
    for out in (model([ids, mask, types]), model((ids, mask, types)),
                model({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})):
        np.testing.assert_array_equal(next(iter(out.values())), first)
    only_ids = model(input_ids=ids)
    np.testing.assert_array_equal(next(iter(model(tf.constant(ids)).values())), next(iter(only_ids.values())))
    assert not np.array_equal(next(iter(only_ids.values())), first)  # the mask and types did matter


@pytest.mark.parametrize("class_name", ["TFElectraModel", "TFElectraForMultipleChoice"])
def test_id_dtypes_and_numpy_or_tensor_inputs_agree(class_name):
    model = _model(class_name)
    ids, types = _ids(class_name)
    ref = next(iter(model(ids.astype(np.int64), token_type_ids=types).values()))
    for variant in (ids.astype(np.int32), tf.constant(ids, tf.int64), tf.constant(ids, tf.int32),
                    ids.astype(np.uint8), ids.astype(np.int16)):
        out = next(iter(model(variant, token_type_ids=tf.constant(types, tf.int32)).values()))
        np.testing.assert_array_equal(out, ref)


def test_return_dict_false_gives_the_present_fields_in_order():
    model = _model("TFElectraForMaskedLM")
    ids, _ = _ids("TFElectraForMaskedLM")
    labels = ids.copy()
    full = model(ids, labels=labels, output_hidden_states=True)
    assert list(full.keys()) == ["loss", "logits", "hidden_states"]
    as_tuple = model(ids, labels=labels, output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 3
    np.testing.assert_array_equal(as_tuple[1], full.logits)
    np.testing.assert_array_equal(full[1], full["logits"])
    assert full.attentions is None


def test_output_flags_fall_back_to_the_config():
    model = _model("TFElectraModel", output_hidden_states=True, output_attentions=True, return_dict=False)
    ids, _ = _ids("TFElectraModel")
    out = model(ids)
    assert isinstance(out, tuple) and len(out) == 3
    assert len(out[1]) == model.config.num_hidden_layers + 1 and len(out[2]) == model.config.num_hidden_layers
    out = model(ids, output_hidden_states=False, output_attentions=False, return_dict=True)
    assert list(out.keys()) == ["last_hidden_state"]


def test_training_flag_turns_dropout_on():
    model = _model("TFElectraModel", hidden_dropout_prob=0.5)
    ids, _ = _ids("TFElectraModel")
    eval_a, eval_b = model(ids).last_hidden_state, model(ids, training=False).last_hidden_state
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(model(ids, training=True).last_hidden_state, eval_a)


def test_dict_inputs_with_unknown_keys_are_refused():
    model = _model("TFElectraModel")
    ids, _ = _ids("TFElectraModel")
    with pytest.raises(ValueError, match="input_idz"):
        model({"input_idz": ids})


def test_classifier_dropout_overrides_the_hidden_dropout():
    ids, _ = _ids("TFElectraForSequenceClassification")
    quiet = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    for name in ("TFElectraForSequenceClassification", "TFElectraForTokenClassification"):
        off = _model(name, **quiet, classifier_dropout=0.0)
        np.testing.assert_array_equal(off(ids, training=True).logits, off(ids).logits)
        on = _model(name, **quiet, classifier_dropout=0.5)
        assert not np.allclose(on(ids, training=True).logits, on(ids).logits)


def test_activations_equal_the_reference_functions():
    torch = pytest.importorskip("torch")
    from transformers.activations import ACT2FN

    from impl_tf.activations import activation_by_name

    x = np.linspace(-6, 6, 101).astype(np.float32)
    for name in SPEC.config.field("summary_activation").choices:
        ours = activation_by_name(name)(tf.constant(x)).numpy()
        ref = ACT2FN[name](torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=1e-5, err_msg=name)


def test_head_mask_zero_silences_a_head():
    model = _model("TFElectraModel")
    ids, _ = _ids("TFElectraModel")
    mask = np.ones((2, 4), np.float32)
    mask[1, 2] = 0.0
    att = model(ids, head_mask=mask, output_attentions=True).attentions
    assert np.all(np.asarray(att[1])[:, 2] == 0) and np.any(np.asarray(att[0])[:, 2] != 0)


# -- bad input ------------------------------------------------------------------------------------
def _expect(clause_id, fn, **values):
    clause = SPEC.errors[clause_id]
    with pytest.raises(Exception) as info:
        fn()
    assert clause.accepts(info.value), f"{clause_id}: raised {type(info.value).__name__}: {info.value}"
    message = own_message(info.value).lower()  # not Keras' listing of every argument of the call
    for fragment in clause.expected_fragments(**values):
        assert fragment.lower() in message, f"{clause_id}: {fragment!r} not in {info.value}"


def test_bad_input_raises_the_spec_errors():
    c = tiny_config()
    model = impl_tf.TFElectraModel(c)
    ids, types = _ids("TFElectraModel")
    bad = ids.copy()
    bad[1, 2] = c.vocab_size + 3
    _expect("error.input_ids.out_of_range", lambda: model(bad), value=c.vocab_size + 3, vocab_size=c.vocab_size)
    _expect("error.input_ids.out_of_range", lambda: model(-ids - 1), value=-ids[0, 0] - 1, vocab_size=c.vocab_size)
    _expect("error.token_type_ids.out_of_range", lambda: model(ids, token_type_ids=types + 5),
            value=types[0, 0] + 5, type_vocab_size=c.type_vocab_size)
    _expect("error.position_ids.out_of_range", lambda: model(ids, position_ids=ids * 0 + 99), value=99,
            max_position_embeddings=c.max_position_embeddings)
    long_ids = np.zeros((1, c.max_position_embeddings + 1), np.int64)
    _expect("error.sequence.too_long", lambda: model(long_ids), actual_length=c.max_position_embeddings + 1,
            max_position_embeddings=c.max_position_embeddings)
    _expect("error.shape.mismatch", lambda: model(ids, attention_mask=np.ones((2, 5))), arg="attention_mask",
            expected=(2, 6), actual=(2, 5))
    _expect("error.shape.mismatch", lambda: model(ids, token_type_ids=types[:, :4]), arg="token_type_ids",
            expected=(2, 6), actual=(2, 4))
    _expect("error.input_ids.rank", lambda: model(ids[0]), arg="input_ids", expected="rank 2", actual=(6,))
    _expect("error.input_ids.dtype", lambda: model(ids.astype(np.float32)), arg="input_ids",
            actual_dtype="float32")
    _expect("error.input_ids.dtype", lambda: model(ids, token_type_ids=types.astype(np.float64)),
            arg="token_type_ids", actual_dtype="float64")
    embeds = np.zeros((2, 6, c.embedding_size), np.float32)
    _expect("error.inputs.both_ids_and_embeds", lambda: model(ids, inputs_embeds=embeds))
    _expect("error.inputs.neither_ids_nor_embeds", lambda: model(attention_mask=np.ones((2, 6))))
    _expect("error.head_mask.shape", lambda: model(ids, head_mask=np.ones((3,), np.float32)), arg="head_mask",
            expected=(4,), actual=(3,))
    _expect("error.inputs_embeds.width", lambda: model(inputs_embeds=np.zeros((2, 6, 5), np.float32)),
            embedding_size=c.embedding_size, actual=5)


def test_bad_labels_raise_the_spec_errors():
    mlm = _model("TFElectraForMaskedLM")
    ids, _ = _ids("TFElectraForMaskedLM")
    labels = ids.copy()
    labels[0, 0] = 77
    _expect("error.labels.out_of_range", lambda: mlm(ids, labels=labels), value=77)
    _expect("error.labels.shape", lambda: mlm(ids, labels=labels[:, :3]), arg="labels", expected=(2, 6),
            actual=(2, 3))
    _expect("error.input_ids.dtype", lambda: mlm(ids, labels=labels.astype(np.float32)), arg="labels",
            actual_dtype="float32")
    cls = _model("TFElectraForSequenceClassification")
    _expect("error.labels.out_of_range", lambda: cls(ids, labels=np.array([0, 9])), value=9)
    mc = _model("TFElectraForMultipleChoice")
    mc_ids, _ = _ids("TFElectraForMultipleChoice")
    _expect("error.labels.out_of_range", lambda: mc(mc_ids, labels=np.array([0, 3])), value=3)


def test_decoder_inputs_are_checked():
    model = _model("TFElectraModel", is_decoder=True, add_cross_attention=True)
    ids, _ = _ids("TFElectraModel")
    _expect("error.encoder_hidden_states.shape", lambda: model(ids, encoder_hidden_states=np.zeros((2, 3, 7),
            np.float32)), arg="encoder_hidden_states", expected="(2, 3, 16)", actual=(2, 3, 7))
    past = model(ids, use_cache=True).past_key_values
    _expect("error.past_key_values.shape", lambda: model(ids, past_key_values=past[:1]), arg="past_key_values",
            expected="num_hidden_layers = 2", actual="1 entries")
    c = model.config
    long_ids = np.zeros((2, c.max_position_embeddings - 5), np.int64)
    _expect("error.sequence.too_long", lambda: model(long_ids, past_key_values=past),
            actual_length=c.max_position_embeddings + 1, max_position_embeddings=c.max_position_embeddings)


def test_config_is_validated_by_the_constructor():
    config = tiny_config()
    config.hidden_size = 18  # not a multiple of 4 heads
    with pytest.raises(ValueError, match="hidden_size"):
        impl_tf.TFElectraModel(config)
