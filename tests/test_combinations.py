"""conformance.combinations: the pairwise selection of calls meets every pair it can reach, stays inside
what an implementation declares, and makes the features it plans."""
from __future__ import annotations

import dataclasses

import numpy as np

from conformance import combinations as C
from conformance import pairs
from tests.test_pairs import _full


def test_the_selection_meets_every_pair_the_spec_gives_a_meaning_to():
    for framework in ("flax", "tf"):
        caps = _full(framework)
        selection = C.planned(framework)
        assert not selection.unreached
        assert selection.target == pairs.universe(caps)  # nothing left to the other families
        met = set().union(*(pairs.met(r.class_name, C.call_of(r, C.config_of(r, caps), caps.inputs)
                                      .features(C.config_of(r, caps))) for r in selection.rows))
        assert selection.target <= met
    target = C.planned("flax").target
    assert ("input:past_key_values", "position_embedding_type=relative_key") in target  # positions with a cache
    assert ("padding=right", "summary_type=last") in target  # the last token of a right-padded row
    assert ("head_mask=per_layer", "two_or_more_layers=True") in target
    assert ("flag:output_attentions", "input:encoder_hidden_states") in target  # cross-attentions returned
    assert ("input:labels", "padding=left") in C.planned("tf").target  # the discriminator loss skips padding


def test_a_call_has_few_unusual_features():
    """At most MAX_UNUSUAL factors away from their plain level (implied ones counted), except the few rows
    grown from a pair that needs more (an encoder mask needs states, cross-attention and a decoder): a defect
    of one feature, an expected failure on one implementation, hides few pairs of the others."""
    for framework in ("flax", "tf"):
        caps = _full(framework)
        factors = C._factors(caps, framework)
        plain = {name: levels[0] for name, levels in factors.items()}
        unusual = [sum(dict(r.levels)[n] != plain[n] for n in factors) for r in C.planned(framework).rows]
        assert sorted(unusual)[len(unusual) // 2] <= C.MAX_UNUSUAL and max(unusual) <= C.MAX_UNUSUAL + 4, unusual
        assert len(unusual) < 120  # pairwise, not every combination


def test_a_planned_call_fits_a_partial_implementation():
    caps = dataclasses.replace(_full("flax"), inputs=frozenset({"input_ids", "attention_mask"}),
                               flags=frozenset(), config={"hidden_act": ("gelu",), "layer_norm_eps": (1e-12,),
                                                          "add_cross_attention": (False,)},
                               methods=frozenset())
    for row in C.planned("flax").rows:
        fitted = dict(C.fit(row, caps).levels)
        assert fitted["hidden_act"] == "gelu" and fitted["default_layer_norm_eps"] is True
        assert fitted["head_mask"] == "off" and fitted["position_ids"] == "off"
        assert fitted["past_key_values"] == "off"  # no run_cached method
        assert fitted["encoder_hidden_states"] == "off" and fitted["encoder_attention_mask"] == "off"
        assert not fitted["output_attentions"] and not fitted["output_hidden_states"]
        assert fitted["attention_mask"] == dict(row.levels)["attention_mask"]  # what it has is kept


def test_a_call_makes_the_features_it_plans():
    caps = _full("tf")
    row = C.Row("TFElectraModel", (("two_or_more_layers", True), ("embedding_projection", True),
                                   ("default_layer_norm_eps", False), ("attention_mask", "left"),
                                   ("head_mask", "per_layer_fractional"), ("output_attentions", True),
                                   ("is_decoder", True), ("add_cross_attention", True),
                                   ("encoder_hidden_states", "on"), ("encoder_attention_mask", "padded"),
                                   ("past_key_values", "on"), ("return_dict", True)))
    cfg = C.config_of(row, caps)
    call = C.call_of(row, cfg, caps.inputs)
    assert cfg["num_hidden_layers"] == 2 and cfg["embedding_size"] != cfg["hidden_size"]
    assert call.inputs["head_mask"].shape == (2, cfg["num_attention_heads"])
    assert not np.array_equal(call.inputs["head_mask"][0], call.inputs["head_mask"][1])  # per-layer rows differ
    assert call.inputs["encoder_hidden_states"].shape == (C.BATCH, C.ENCODER_SEQUENCE, cfg["hidden_size"])
    assert call.inputs["encoder_attention_mask"].min() == 0 and call.prefix == C.PREFIX and call.tuple_form
    features = call.features(cfg)
    assert {"padding=left", "head_mask=per_layer", "head_mask_fractional=True", "embedding_projection=True",
            "default_layer_norm_eps=False", "two_or_more_layers=True", "flag:output_attentions",
            "input:encoder_attention_mask", "input:past_key_values", "flag:return_dict"} <= features


def test_a_call_passes_only_what_its_class_takes():
    caps = _full("tf")
    row = C.Row("TFElectraForPreTraining", (("add_cross_attention", True), ("is_decoder", True),
                                            ("encoder_hidden_states", "on"), ("past_key_values", "on"),
                                            ("use_cache", True), ("labels", "on"), ("inputs_embeds", "on")))
    call = C.call_of(row, C.config_of(row, caps), caps.inputs)
    assert "encoder_hidden_states" not in call.inputs and call.prefix is None and not call.flags
    assert "inputs_embeds" in call.inputs and "input_ids" not in call.inputs and "labels" in call.inputs
    flax = C.Row("FlaxElectraForMaskedLM", (("is_decoder", True), ("past_key_values", "on")))
    assert C.call_of(flax, C.config_of(flax, _full("flax")), _full("flax").inputs).prefix == 0  # a new cache


def test_labels_follow_the_problem_type():
    caps = _full("tf")
    for problem, dtype, shape in (("regression", np.float32, (C.BATCH, 2)), (None, np.int32, (C.BATCH,)),
                                  ("multi_label_classification", np.float32, (C.BATCH, 2))):
        row = C.Row("TFElectraForSequenceClassification", (("problem_type", problem), ("labels", "on")))
        cfg = C.config_of(row, caps)
        labels = C.call_of(row, cfg, caps.inputs).inputs["labels"]
        assert cfg["num_labels"] == 2 and labels.dtype == dtype and labels.shape == shape


def test_every_selection_starts_with_the_corners():
    """A decoder with a left-padded mask and no cache (conformance.combinations.CORNERS): the pair
    is_decoder x padding=left may otherwise be met only by a cached call, which compares the rows after the
    prefix and so never shows what a fully masked first query computes."""
    for framework in ("flax", "tf"):
        first = C.planned(framework).rows[0]
        levels = dict(first.levels)
        assert first.class_name.endswith("ElectraModel") and levels["is_decoder"] is True
        assert levels["attention_mask"] == "left" and levels["past_key_values"] == "off"


def test_every_value_counted_by_its_group_still_goes_through_a_call():
    """The pairs of hidden_act and summary_activation count groups of values (combinations.yaml alike); each
    value is still one call's, so a value whose own function is wrong can show in this family too."""
    from spec import load_spec

    alike = load_spec().sections["combinations"].alike
    for framework in ("flax", "tf"):
        caps, rows = _full(framework), C.planned(framework).rows
        for name in alike:
            levels = C._factors(caps, framework)[name]
            assert len(levels) > 2 and {r.level(name) for r in rows} == set(levels), (framework, name)
