"""conformance.combinations: the pairwise selection of calls meets every pair it can reach, stays inside
what an implementation declares, and makes the features it plans."""
from __future__ import annotations

import dataclasses

import numpy as np

from conformance import combinations as C
from conformance import pairs
from tests.test_pairs import _full


def test_the_selection_meets_every_pair_its_factors_reach():
    caps = _full("flax")
    selection = C.planned("flax")
    assert not selection.unreached
    met = set().union(*(pairs.met(r.class_name, pairs.call_features(C.config_of(r, caps),
                                                                   *C.inputs_of(r, C.config_of(r, caps), caps.inputs)))
                        for r in selection.rows))
    assert selection.target <= met
    assert selection.target <= pairs.universe(caps)
    # the pairs a call of these factors cannot make are the other families' (caches, labels, the summary, ...)
    assert ("input:past_key_values", "position_embedding_type=relative_key") not in selection.target
    assert ("head_mask=per_layer", "two_or_more_layers=True") in selection.target
    assert len(selection.rows) < 60  # pairwise, not every combination


def test_a_planned_call_fits_a_partial_implementation():
    caps = dataclasses.replace(_full("flax"), inputs=frozenset({"input_ids", "attention_mask"}),
                               flags=frozenset(), config={"hidden_act": ("gelu",), "layer_norm_eps": (1e-12,)})
    for row in C.planned("flax").rows:
        fitted = dict(C.fit(row, caps).levels)
        assert fitted["hidden_act"] == "gelu" and fitted["default_layer_norm_eps"] is True
        assert fitted["head_mask"] == "off" and fitted["position_ids"] == "off"
        assert not fitted["output_attentions"] and not fitted["output_hidden_states"]
        assert fitted["attention_mask"] == dict(row.levels)["attention_mask"]  # what it has is kept


def test_a_call_makes_the_features_it_plans():
    caps = _full("tf")
    row = C.Row("TFElectraModel", (("two_or_more_layers", True), ("embedding_projection", True),
                                   ("default_layer_norm_eps", False), ("attention_mask", "left"),
                                   ("head_mask", "per_layer_fractional"), ("output_attentions", True)))
    cfg = C.config_of(row, caps)
    inputs, flags = C.inputs_of(row, cfg, caps.inputs)
    assert cfg["num_hidden_layers"] == 2 and cfg["embedding_size"] != cfg["hidden_size"]
    assert inputs["head_mask"].shape == (2, cfg["num_attention_heads"])
    assert not np.array_equal(inputs["head_mask"][0], inputs["head_mask"][1])  # per-layer rows differ
    features = pairs.call_features(cfg, inputs, flags)
    assert {"padding=left", "head_mask=per_layer", "head_mask_fractional=True", "embedding_projection=True",
            "default_layer_norm_eps=False", "two_or_more_layers=True", "flag:output_attentions"} <= features
