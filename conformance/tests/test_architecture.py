"""Semantics, architecture clauses: every encoder layer and every head recomputed in NumPy
(conformance/numpy_model.py) from the hidden states the implementation returns and its canonical
weights: architecture.self_attention / attention_mask / relative_positions / attention_output /
feed_forward and the head clauses, with the activation clauses (activation.<name>) they use. A
mismatch that another reading explains (another activation, another epsilon, no mask) names that
clause."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import numpy_model as nm
from conformance import strategies as S
from conformance.tests._helpers import REFERENCE_KIND, blame_alternative, build, examples, run, spec_class
from spec import load_spec

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_HEAD_CLAUSE = {"pretraining": "architecture.discriminator_head", "masked_lm": "architecture.generator_head",
                "causal_lm": "architecture.generator_head", "sequence_classification":
                "architecture.sequence_classification_head", "token_classification":
                "architecture.token_classification_head", "question_answering": "architecture.question_answering_head"}


def _flat_mask(case) -> np.ndarray:
    return case.inputs["attention_mask"].reshape(-1, case.dims["seq"])


@examples(2)
@given(data=st.data())
def test_encoder_layers_recomputed(check, adapter, class_name, model_cache, data):
    case = data.draw(S.cases(class_name, args=_INPUTS, mask_kinds=("full", "right")))
    cfg = case.config
    handle = build(model_cache, class_name, cfg)
    out = run(model_cache, handle, case.inputs, flags={"output_hidden_states": True, "output_attentions": True})
    weights = adapter.get_weights(handle)
    prefix = spec_class(class_name).param_prefix
    causal = bool(cfg.get("is_decoder"))
    bias = nm.additive_mask(_flat_mask(case), causal)
    clauses = ["architecture.self_attention", "architecture.attention_mask", "architecture.attention_output",
               "architecture.feed_forward", f"activation.{cfg['hidden_act']}"]
    if cfg["position_embedding_type"] != "absolute":
        clauses.append("architecture.relative_positions")
    check.clause(*clauses)
    default_eps = load_spec().config.field("layer_norm_eps").default
    for layer in range(cfg["num_hidden_layers"]):
        h = np.asarray(out.fields["hidden_states"][layer], np.float64)
        w = nm.layer_weights(weights, prefix, layer)
        want, probs = nm.encoder_layer(h, w, cfg, bias)
        got = out.fields["hidden_states"][layer + 1]
        alternatives = [(f"activation.{cfg['hidden_act']}", f"hidden_act={act!r} (config: {cfg['hidden_act']!r})",
                         nm.encoder_layer(h, w, dict(cfg, hidden_act=act), bias)[0])
                        for act in load_spec().config.field("hidden_act").choices if act != cfg["hidden_act"]]
        alternatives.append(("ElectraConfig.field.layer_norm_eps", f"LayerNorm epsilon {default_eps:g}",
                             nm.encoder_layer(h, w, dict(cfg, layer_norm_eps=default_eps), bias)[0]))
        alternatives.append(("architecture.attention_mask", "no padding mask",
                             nm.encoder_layer(h, w, cfg, nm.additive_mask(np.ones_like(_flat_mask(case)), causal))[0]))
        blame_alternative(check, got, want, alternatives)
        check.allclose(out.fields["attentions"][layer], probs, clause="architecture.self_attention",
                       kind=REFERENCE_KIND, field="attentions")
        check.allclose(got, want, clause="architecture.feed_forward", kind=REFERENCE_KIND, field="hidden_states")


@examples(2)
@given(data=st.data())
def test_head_recomputed(check, adapter, class_name, model_cache, data):
    head = spec_class(class_name).loss
    if head not in _HEAD_CLAUSE:
        pytest.skip(f"{class_name} has no per-position or first-token head "
                    f"(the multiple-choice head is test_sequence_summary_options)")
    case = data.draw(S.cases(class_name, args=_INPUTS))
    cfg = case.config
    handle = build(model_cache, class_name, cfg)
    out = run(model_cache, handle, case.inputs, flags={"output_hidden_states": True})
    weights = adapter.get_weights(handle)
    prefix = spec_class(class_name).param_prefix
    h = np.asarray(out.fields["hidden_states"][-1], np.float64)
    want = nm.head_outputs(head, h, weights, prefix, cfg)
    clause = _HEAD_CLAUSE[head]
    check.clause(clause)
    for name, expected in want.items():
        if head == "pretraining":
            alternatives = [(f"activation.{cfg['hidden_act']}", f"hidden_act={act!r}",
                             nm.head_outputs(head, h, weights, prefix, dict(cfg, hidden_act=act))[name])
                            for act in load_spec().config.field("hidden_act").choices if act != cfg["hidden_act"]]
            blame_alternative(check, out.fields[name], expected, alternatives)
        check.allclose(out.fields[name], expected, clause=clause, kind=REFERENCE_KIND, field=name)
