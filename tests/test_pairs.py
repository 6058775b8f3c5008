"""conformance.pairs: the features of a call, the pairs a run exercised and those it could have."""
from __future__ import annotations

import dataclasses

import numpy as np

from conformance.pairs import call_features, exercised, summary, universe
from tests.test_capabilities import BARE


def test_a_call_names_its_config_inputs_and_flags():
    mask = np.array([[0, 1, 1], [1, 1, 0]])
    head_mask = np.array([[1.0, 0.5], [0.0, 1.0]], np.float32)
    features = call_features({"position_embedding_type": "relative_key", "embedding_size": 8, "hidden_size": 16,
                              "num_hidden_layers": 2}, {"input_ids": np.zeros((2, 3)), "attention_mask": mask,
                                                        "head_mask": head_mask, "position_ids": None},
                             {"output_attentions": True, "output_hidden_states": False})
    assert {"position_embedding_type=relative_key", "embedding_projection=True", "two_or_more_layers=True",
            "default_layer_norm_eps=True", "input:attention_mask", "head_mask=per_layer", "head_mask_fractional=True",
            "padding=left", "padding=right", "flag:output_attentions"} <= features
    assert "input:position_ids" not in features and "flag:output_hidden_states" not in features
    assert not any(f.startswith("output_attentions=") for f in features)  # a call mode, not a feature


def test_pairs_join_different_options_only():
    pairs = exercised([("FlaxElectraModel", frozenset({"default_layer_norm_eps=False", "hidden_act=relu",
                                                       "input:head_mask", "padding=left", "padding=right"}))])
    assert ("default_layer_norm_eps=False", "hidden_act~nonlinear") in pairs  # both in the feed-forward block
    assert ("input:head_mask", "padding=left") in pairs  # both in the attention
    assert ("padding=left", "padding=right") not in pairs  # two values of one option
    assert ("hidden_act~nonlinear", "input:head_mask") not in pairs  # they never meet


def test_a_pair_is_exercised_only_in_a_class_where_it_meets():
    features = frozenset({"embedding_projection=True", "tie_word_embeddings=False"})
    assert not exercised([("FlaxElectraModel", features)])  # no generator head there
    assert exercised([("FlaxElectraForMaskedLM", features)]) == {("embedding_projection=True",
                                                                  "tie_word_embeddings=False")}


def test_the_universe_is_what_the_capabilities_allow():
    possible = universe(BARE)
    features = {f for pair in possible for f in pair}
    assert "hidden_act~nonlinear" in features  # relu, the one it supports, counted as its group (alike)
    assert not any(f.startswith("hidden_act=") for f in features)
    assert "position_embedding_type=absolute" in features and "position_embedding_type=relative_key" not in features
    assert "input:attention_mask" in features and "input:head_mask" not in features
    decoder = dataclasses.replace(BARE, config={})
    assert ("add_cross_attention=True", "is_decoder=False") not in universe(decoder)  # the config constraint
    assert ("add_cross_attention=True", "is_decoder=True") in universe(decoder)


def test_pairs_the_spec_keeps_apart_are_not_asked_for():
    """combinations.yaml ``apart``: pairs no call can have (a constraint, an error, a meaningless input)."""
    possible = universe(_full("tf"))
    assert ("input:input_ids", "input:inputs_embeds") not in possible  # error.inputs.both_ids_and_embeds
    assert ("input:past_key_values", "is_decoder=False") not in possible  # a cache exists for decoders only
    assert ("add_cross_attention=False", "input:encoder_hidden_states") not in possible
    assert ("input:past_key_values", "is_decoder=True") in possible


def test_summary_lists_what_no_call_exercised():
    calls = [("FlaxElectraModel", call_features({"hidden_act": "relu", "position_embedding_type": "absolute"},
                                                {"input_ids": np.zeros((1, 2)), "attention_mask": np.array([[1, 1]])},
                                                {}))]
    report = summary(calls, BARE)
    assert 0 < report["exercised"] < report["total"] == len(universe(BARE))
    assert "input:attention_mask x padding=left" in report["missing"]  # a mask was passed, never a left-padded one
    assert "input:attention_mask x position_embedding_type=absolute" not in report["missing"]


def test_malformed_inputs_are_described_not_refused():
    """The error family passes empty, wrong-dtype and wrong-rank inputs: describing them must not raise."""
    features = call_features({}, {"input_ids": np.zeros((2, 0), np.int32), "attention_mask": np.zeros((2, 0), np.int32),
                                  "head_mask": np.full((2,), "1")}, {})
    assert {"input:input_ids", "input:attention_mask", "input:head_mask"} <= features


def _full(framework: str):
    from conformance.adapters.common import full_capabilities
    from conformance.registry import spec_class_names

    return full_capabilities(framework, spec_class_names(framework), methods=("run_cached",))


def test_every_feature_has_the_parts_it_acts_on_in_the_spec():
    """A feature the suite can record but combinations.yaml does not place would silently drop its pairs."""
    from conformance.pairs import _option, supported_features
    from spec import load_spec

    combos = load_spec().sections["combinations"]
    for framework in ("tf", "flax"):
        for feature in supported_features(_full(framework)):
            assert combos.acts_on(_option(feature)), feature


def test_pairs_the_spec_gives_a_meaning_to():
    """Two features meet when they act on a common part of a class the implementation offers."""
    possible = universe(_full("flax"))
    assert ("padding=left", "position_embedding_type=relative_key") in possible  # both in the attention scores
    assert ("padding=left", "summary_type=mean") in possible  # the summary reads the padded positions
    assert ("embedding_projection=True", "tie_word_embeddings=False") in possible  # both in the generator head
    assert ("head_mask=per_layer", "two_or_more_layers=True") in possible
    assert ("hidden_act~nonlinear", "summary_activation~nonlinear") not in possible  # feed-forward vs the summary
    assert ("problem_type=regression", "summary_type=mean") not in possible  # two different heads
    without_choice = dataclasses.replace(_full("flax"), classes=("FlaxElectraForMaskedLM",))
    assert ("padding=left", "summary_type=mean") not in universe(without_choice)  # no class has the summary
    assert ("input:encoder_hidden_states", "position_embedding_type=relative_key") in possible  # cross-attention


def test_values_that_act_alike_count_as_their_group():
    """combinations.yaml ``alike``: the activations' values are one feature per group in every pair; the
    identity summary activation is its own group, since it commutes with the mean summary."""
    from conformance.pairs import alike

    assert alike("hidden_act=relu") == alike("hidden_act=gelu_new") == "hidden_act~nonlinear"
    assert alike("summary_activation=linear") == alike("summary_activation=None") == "summary_activation~identity"
    assert alike("summary_activation=tanh") == "summary_activation~nonlinear"
    assert alike("summary_type=mean") == "summary_type=mean" and alike("input:head_mask") == "input:head_mask"
    possible = universe(_full("flax"))
    assert {("summary_activation~identity", "summary_type=mean"),
            ("summary_activation~nonlinear", "summary_type=mean"),
            ("summary_activation~nonlinear", "summary_use_proj=False")} <= possible
    assert not any(f.startswith(("hidden_act=", "summary_activation=")) for pair in possible for f in pair)
    assert exercised([("FlaxElectraForMultipleChoice", frozenset({"summary_activation=relu", "summary_type=mean"}))]) \
        == {("summary_activation~nonlinear", "summary_type=mean")}
