"""impl_tf against the PyTorch reference (transformers' Electra* classes, same weights): every output
field and every loss, for every TF class, on tiny configs covering the config options."""
from __future__ import annotations

import numpy as np
import pytest

from spec import load_spec
from tf_helpers import assert_close, run_torch, tiny_config, torch_reference, torch_state

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # the conformance numerics family checks the same against PyTorch golden data
import impl_tf  # noqa: E402
from impl_tf.weights import assign_canonical_state  # noqa: E402

TF_CLASSES = [c.name for c in load_spec().classes_for("tf")]
CONFIGS = {
    "absolute": dict(),
    "relkq_gelu_new_untied": dict(position_embedding_type="relative_key_query", hidden_act="gelu_new",
                                  tie_word_embeddings=False, summary_type="mean", classifier_dropout=0.3),
    "relk_relu_noproj": dict(position_embedding_type="relative_key", embedding_size=16, hidden_act="relu",
                             summary_type="last", summary_activation="tanh"),
}


def _config(class_name, **overrides):
    extra = {}
    if class_name == "TFElectraForQuestionAnswering":
        extra["num_labels"] = 2  # qa_outputs is (2, H)
    if class_name == "TFElectraForCausalLM":
        extra["is_decoder"] = True
    return tiny_config(**overrides, **extra)


def _pair(class_name, config):
    pt = torch_reference(class_name, config)
    ours = getattr(impl_tf, class_name)(config)
    result = assign_canonical_state(ours, torch_state(pt))
    assert not result.missing and not result.mismatched
    return ours, pt


def _inputs(class_name, rng, seq=7):
    lead = (2, 3) if class_name == "TFElectraForMultipleChoice" else (2,)
    mask = np.ones(lead + (seq,), np.int64)
    mask[..., -2:] = 0
    return dict(input_ids=rng.randint(0, 40, lead + (seq,)), attention_mask=mask,
                token_type_ids=rng.randint(0, 3, lead + (seq,)))


def _compare(ours_out, pt_out, where):
    assert set(ours_out) <= set(k for k in pt_out.keys() if pt_out[k] is not None) | {"past_key_values"}
    for field, value in ours_out.items():
        if field == "past_key_values":
            continue
        ref = pt_out[field]
        if isinstance(value, tuple):
            assert len(value) == len(ref)
            for a, b in zip(value, ref):
                assert_close(a, b.numpy(), field, where=where)
        else:
            assert_close(value, ref.numpy(), field, where=where)


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("class_name", TF_CLASSES)
def test_outputs_equal_the_pytorch_reference(class_name, config_name):
    config = _config(class_name, **CONFIGS[config_name])
    ours, pt = _pair(class_name, config)
    inputs = _inputs(class_name, np.random.RandomState(1))
    flags = dict(output_hidden_states=True, output_attentions=True)
    out = ours(**inputs, **flags)
    assert "hidden_states" in out and len(out["hidden_states"]) == config.num_hidden_layers + 1
    _compare(out, run_torch(pt, dict(inputs, **flags)), f"{class_name}/{config_name}: ")


@pytest.mark.parametrize("class_name", ["TFElectraModel", "TFElectraForMaskedLM"])
def test_head_mask_position_ids_and_inputs_embeds_equal_the_reference(class_name):
    config = _config(class_name, position_embedding_type="absolute")
    ours, pt = _pair(class_name, config)
    rng = np.random.RandomState(2)
    inputs = _inputs(class_name, rng)
    head_mask = rng.uniform(0, 1, (config.num_hidden_layers, config.num_attention_heads)).astype(np.float32)
    position_ids = np.tile(rng.permutation(10)[:7], (2, 1))
    embeds = rng.normal(size=(2, 7, config.embedding_size)).astype(np.float32)
    for extra in (dict(head_mask=head_mask), dict(head_mask=head_mask[0]), dict(position_ids=position_ids)):
        _compare(ours(**inputs, **extra), run_torch(pt, dict(inputs, **extra)), f"{class_name} {list(extra)}: ")
    no_ids = {k: v for k, v in inputs.items() if k != "input_ids"}
    _compare(ours(**no_ids, inputs_embeds=embeds), run_torch(pt, dict(no_ids, inputs_embeds=embeds)),
             f"{class_name} inputs_embeds: ")


def _labels(class_name, config, inputs, rng):
    shape = inputs["input_ids"].shape
    if class_name == "TFElectraForPreTraining":
        return dict(labels=rng.randint(0, 2, shape))
    if class_name in ("TFElectraForMaskedLM", "TFElectraForCausalLM"):
        labels = rng.randint(0, config.vocab_size, shape)
        labels[0, :3] = -100
        return dict(labels=labels)
    if class_name == "TFElectraForTokenClassification":
        labels = rng.randint(0, config.num_labels, shape)
        labels[:, -2:] = -100
        return dict(labels=labels)
    if class_name == "TFElectraForSequenceClassification":
        return dict(labels=rng.randint(0, config.num_labels, shape[:1]))
    if class_name == "TFElectraForMultipleChoice":
        return dict(labels=rng.randint(0, shape[1], shape[:1]))
    if class_name == "TFElectraForQuestionAnswering":
        # one position inside, one outside the sequence (clamped and not counted)
        return dict(start_positions=np.array([3, 50]), end_positions=np.array([-5, 4]))
    return {}


@pytest.mark.parametrize("class_name", [c for c in TF_CLASSES if c != "TFElectraModel"])
def test_losses_equal_the_pytorch_reference(class_name):
    config = _config(class_name)
    ours, pt = _pair(class_name, config)
    rng = np.random.RandomState(3)
    inputs = _inputs(class_name, rng)
    labels = _labels(class_name, config, inputs, rng)
    out = ours(**inputs, **labels)
    ref = run_torch(pt, dict(inputs, **labels))
    assert out["loss"].shape == ()
    assert_close(out["loss"], ref.loss.numpy(), "loss", where=class_name)


@pytest.mark.parametrize("problem", ["regression", "multi_label_classification", "single_label_classification"])
def test_sequence_classification_problem_types_equal_the_reference(problem):
    num_labels = 1 if problem == "regression" else 3
    config = _config("TFElectraForSequenceClassification", num_labels=num_labels)
    ours, pt = _pair("TFElectraForSequenceClassification", config)
    rng = np.random.RandomState(4)
    inputs = _inputs("TFElectraForSequenceClassification", rng)
    if problem == "regression":
        labels = rng.normal(size=(2,)).astype(np.float32)
    elif problem == "multi_label_classification":
        labels = rng.randint(0, 2, (2, 3)).astype(np.float32)
    else:
        labels = rng.randint(0, 3, (2,))
    out = ours(**inputs, labels=labels)
    assert_close(out["loss"], run_torch(pt, dict(inputs, labels=labels)).loss.numpy(), "loss", where=problem)


def test_pretraining_loss_counts_only_attended_positions():
    config = _config("TFElectraForPreTraining")
    ours, _ = _pair("TFElectraForPreTraining", config)
    rng = np.random.RandomState(5)
    inputs = _inputs("TFElectraForPreTraining", rng)
    labels = rng.randint(0, 2, inputs["input_ids"].shape)
    base = float(ours(**inputs, labels=labels)["loss"])
    flipped = labels.copy()
    flipped[inputs["attention_mask"] == 0] ^= 1  # change labels only where attention_mask == 0
    assert float(ours(**inputs, labels=flipped)["loss"]) == pytest.approx(base, abs=1e-7)


@pytest.mark.parametrize("summary", [dict(summary_type="cls_index", summary_use_proj=False),
                                     dict(summary_type="first", summary_activation=None),
                                     dict(summary_type="mean", summary_activation="linear")])
def test_sequence_summary_options_equal_the_reference(summary):
    config = _config("TFElectraForMultipleChoice", **summary)
    ours, pt = _pair("TFElectraForMultipleChoice", config)
    inputs = _inputs("TFElectraForMultipleChoice", np.random.RandomState(6))
    _compare(ours(**inputs), run_torch(pt, inputs), f"summary {summary}: ")
