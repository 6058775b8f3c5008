"""Semantics, architecture clauses: every encoder layer and every head recomputed in NumPy
(conformance/numpy_model.py) from the hidden states the implementation returns and its canonical
weights: architecture.self_attention / attention_mask / relative_positions / attention_output /
feed_forward and the head clauses, with the activation clauses (activation.<name>) they use. A
mismatch that another reading explains (another activation, another epsilon, no mask) names that
clause. The whole model recomputed from the inputs alone (test_whole_model_recomputed) needs nothing
but the plain call, so it checks the numbers of every implementation, a bare encoder included."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import numpy_model as nm
from conformance import numpy_ref as ref
from conformance import strategies as S
from conformance.tests._helpers import (REFERENCE_KIND, blame_alternative, build, drawn_weights, examples, run,
                                        spec_class)
from spec import load_spec

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_HEAD_CLAUSE = {"pretraining": "architecture.discriminator_head", "masked_lm": "architecture.generator_head",
                "causal_lm": "architecture.generator_head", "sequence_classification":
                "architecture.sequence_classification_head", "token_classification":
                "architecture.token_classification_head", "question_answering": "architecture.question_answering_head"}


def _generator_logits(h: np.ndarray, weights, prefix: str, cfg, act: str) -> np.ndarray:
    """The generator head (architecture.generator_head) with activation ``act`` in place of exact
    gelu: the reading decision.generator_activation rules out. h (B,S,H) -> (B,S,V)."""
    w = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    dense = ref.linear(h, w["generator_predictions.dense.weight"], w["generator_predictions.dense.bias"])
    g = ref.ACTIVATIONS[act](dense)
    g = ref.layer_norm(g, w["generator_predictions.LayerNorm.weight"], w["generator_predictions.LayerNorm.bias"],
                       cfg["layer_norm_eps"])
    table = w["generator_lm_head.weight"] if not cfg.get("tie_word_embeddings", True) else \
        w[f"{prefix}embeddings.word_embeddings.weight"]
    return g @ table.T + w["generator_lm_head.bias"]


def _flat_mask(case) -> np.ndarray:
    """(B, S) attention mask of the case; ones where the implementation takes no mask (it was left out)."""
    ids = case.inputs["input_ids"]
    return case.inputs.get("attention_mask", np.ones_like(ids)).reshape(-1, case.dims["seq"])


@examples(1)
@given(data=st.data())
def test_whole_model_recomputed(check, adapter, caps, class_name, model_cache, data):
    """Every field the plain call returns (no flags), against the float64 NumPy model run from the same
    inputs and weights: embeddings, every layer, the head. The weights are drawn by the suite at the
    config's initializer_range (drawn_weights), not left to the implementation's initialiser. Every bucket
    the implementation supports, in each example (one example may not leave out a bucket's activation,
    epsilon or embedding projection)."""
    spec_cls = spec_class(class_name)
    if "choices" in spec_cls.lead:
        pytest.skip("the multiple-choice head is recomputed by test_activation_formulas")
    for bucket in S.fitting_buckets(caps, class_name):
        _whole_model(check, adapter, class_name, model_cache, data,
                     data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(bucket,))))


def _whole_model(check, adapter, class_name: str, model_cache, data, case) -> None:
    spec_cls = spec_class(class_name)
    cfg, head = case.config, spec_cls.loss
    clauses = ["architecture.embeddings", "architecture.self_attention", "architecture.attention_mask",
               "architecture.attention_output", "architecture.feed_forward", f"activation.{cfg['hidden_act']}"]
    clauses += ["architecture.embeddings_project"] if cfg["embedding_size"] != cfg["hidden_size"] else []
    clauses += ["architecture.relative_positions"] if cfg["position_embedding_type"] != "absolute" else []
    clauses += [_HEAD_CLAUSE[head]] if head else []
    check.clause(*clauses)
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed of the weights")
    weights = drawn_weights(adapter.get_weights(build(model_cache, class_name, cfg)), cfg["initializer_range"], seed)
    out = run(model_cache, model_cache.get(class_name, cfg, weights=weights), case.inputs)

    def outputs(masked: bool = True, **changes):
        """The NumPy model's output fields, with config ``changes`` (another reading of the spec)."""
        config = dict(cfg, **changes)
        states = nm.forward(weights, spec_cls.param_prefix, config, case.inputs["input_ids"],
                            case.inputs.get("attention_mask") if masked else None, case.inputs.get("token_type_ids"))
        if head:
            return nm.head_outputs(head, states[-1], weights, spec_cls.param_prefix, config)
        return {"last_hidden_state": states[-1]}

    want, target = outputs(), _HEAD_CLAUSE[head] if head else "architecture.feed_forward"
    compared = [name for name in want if name in out.fields]
    check.that(bool(compared), clause=target, message=f"the call returned none of {sorted(want)} "
                                                      f"(it returned {sorted(out.fields)})")
    default_eps = load_spec().config.field("layer_norm_eps").default
    alternatives = [(f"activation.{cfg['hidden_act']}", f"hidden_act={act!r} (config: {cfg['hidden_act']!r})",
                     outputs(hidden_act=act)) for act in load_spec().config.field("hidden_act").choices
                    if act != cfg["hidden_act"]]
    alternatives.append(("ElectraConfig.field.layer_norm_eps", f"LayerNorm epsilon {default_eps:g}",
                         outputs(layer_norm_eps=default_eps)))
    alternatives.append(("architecture.attention_mask", "no padding mask", outputs(masked=False)))
    for name in compared:
        blame_alternative(check, out.fields[name], want[name], [(c, d, o[name]) for c, d, o in alternatives])
        check.allclose(out.fields[name], want[name], clause=target, kind=REFERENCE_KIND, field=name)


@examples(2)
@given(data=st.data())
def test_encoder_layers_recomputed(check, adapter, caps, class_name, model_cache, data):
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, mask_kinds=("full", "right")))
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
        clauses += ["architecture.relative_positions", "decision.relative_position_embeddings"]
    check.clause(*clauses)
    if cfg["position_embedding_type"] != "absolute":
        table = "attention.self.distance_embedding.weight"
        check.that(table in nm.layer_weights(weights, prefix, 0), clause="decision.relative_position_embeddings",
                   message=f"position_embedding_type={cfg['position_embedding_type']!r} but layer 0 has no {table}")
    default_eps = load_spec().config.field("layer_norm_eps").default
    for layer in range(cfg["num_hidden_layers"]):
        h = np.asarray(out.fields["hidden_states"][layer], np.float64)
        w = nm.layer_weights(weights, prefix, layer)
        want, probs = nm.encoder_layer(h, w, cfg, bias)[:2]
        got = out.fields["hidden_states"][layer + 1]
        alternatives = [(f"activation.{cfg['hidden_act']}", f"hidden_act={act!r} (config: {cfg['hidden_act']!r})",
                         nm.encoder_layer(h, w, dict(cfg, hidden_act=act), bias)[0])
                        for act in load_spec().config.field("hidden_act").choices if act != cfg["hidden_act"]]
        alternatives.append(("ElectraConfig.field.layer_norm_eps", f"LayerNorm epsilon {default_eps:g}",
                             nm.encoder_layer(h, w, dict(cfg, layer_norm_eps=default_eps), bias)[0]))
        if cfg["position_embedding_type"] != "absolute":
            alternatives.append(("decision.relative_position_embeddings", "no relative position terms",
                                 nm.encoder_layer(h, w, dict(cfg, position_embedding_type="absolute"), bias)[0]))
        alternatives.append(("architecture.attention_mask", "no padding mask",
                             nm.encoder_layer(h, w, cfg, nm.additive_mask(np.ones_like(_flat_mask(case)), causal))[0]))
        blame_alternative(check, got, want, alternatives)
        check.allclose(out.fields["attentions"][layer], probs, clause="architecture.self_attention",
                       kind=REFERENCE_KIND, field="attentions")
        check.allclose(got, want, clause="architecture.feed_forward", kind=REFERENCE_KIND, field="hidden_states")


@examples(2)
@given(data=st.data())
def test_head_recomputed(check, adapter, caps, class_name, model_cache, data):
    head = spec_class(class_name).loss
    if head not in _HEAD_CLAUSE:
        pytest.skip(f"{class_name} has no per-position or first-token head "
                    f"(the multiple-choice head is test_sequence_summary_options)")
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    cfg = case.config
    handle = build(model_cache, class_name, cfg)
    out = run(model_cache, handle, case.inputs, flags={"output_hidden_states": True})
    weights = adapter.get_weights(handle)
    prefix = spec_class(class_name).param_prefix
    h = np.asarray(out.fields["hidden_states"][-1], np.float64)
    want = nm.head_outputs(head, h, weights, prefix, cfg)
    clause = _HEAD_CLAUSE[head]
    check.clause(clause)
    if head in ("masked_lm", "causal_lm"):
        check.clause("decision.generator_activation")
    for name, expected in want.items():
        if head in ("masked_lm", "causal_lm") and cfg["hidden_act"] != "gelu":
            blame_alternative(check, out.fields[name], expected, [(
                "decision.generator_activation", f"the generator head applying hidden_act={cfg['hidden_act']!r} "
                f"instead of exact gelu", _generator_logits(h, weights, prefix, cfg, cfg["hidden_act"]))])
        if head == "pretraining":
            alternatives = [(f"activation.{cfg['hidden_act']}", f"hidden_act={act!r}",
                             nm.head_outputs(head, h, weights, prefix, dict(cfg, hidden_act=act))[name])
                            for act in load_spec().config.field("hidden_act").choices if act != cfg["hidden_act"]]
            blame_alternative(check, out.fields[name], expected, alternatives)
        check.allclose(out.fields[name], expected, clause=clause, kind=REFERENCE_KIND, field=name)


# -- every activation name, as hidden_act and as summary_activation --------------------------------
def _activation_pairs() -> list[tuple[str, str]]:
    """(hidden_act, summary_activation) pairs covering every activation name of behaviour.yaml in a
    slot config.yaml allows it in, with half as many models as names: hidden_act choices in order
    beside summary_activation choices in reverse order."""
    spec = load_spec()
    hidden = list(spec.config.field("hidden_act").choices)
    summary = list(reversed(spec.config.field("summary_activation").choices))
    names = list(spec.behaviour.activations)
    pairs = []
    while {n for pair in pairs for n in pair} < set(names):
        i = len(pairs)
        pairs.append((hidden[i % len(hidden)], summary[i % len(summary)]))
    return pairs


def _multiple_choice_class(framework: str) -> str:
    return next(c.name for c in load_spec().classes_for(framework) if "choices" in c.lead)


_ACTIVATION_SHAPE = (2, S.CHOICES, 5)  # (B, C, S): one input shape for every activation model


@pytest.mark.parametrize("hidden_act,summary_activation", _activation_pairs(),
                         ids=[f"{h}+{s}" for h, s in _activation_pairs()])
def test_activation_formulas(check, adapter, caps, device, model_cache, hidden_act, summary_activation):
    """A one-layer multiple-choice model with hidden_act and summary_activation set: its feed-forward
    layer (architecture.feed_forward) and its sequence summary (architecture.multiple_choice_head)
    recomputed in NumPy with the formulas of behaviour.yaml (activation.<name>); an output that another
    activation explains far better names that activation's clause. Every name of config.yaml's choices
    must build (decision.activation_names)."""
    class_name = _multiple_choice_class(adapter.framework)
    caps.skip_unless(f"class:{class_name}")
    if not adapter.supports(class_name, "float32", device).ok:
        caps.skip(f"{class_name} (float32, {device})")
    hidden_clause, summary_clause = f"activation.{hidden_act}", f"activation.{summary_activation}"
    check.clause(hidden_clause, summary_clause, "decision.activation_names")
    cfg = S.config_bucket(0, class_name, hidden_act=hidden_act, summary_activation=summary_activation,
                          summary_type="first", summary_use_proj=True, num_hidden_layers=1)
    try:
        handle = build(model_cache, class_name, cfg)
    except Exception as err:  # noqa: BLE001 - the finding: a name the spec allows is refused
        check.fail("decision.activation_names", f"hidden_act={hidden_act!r} / summary_activation="
                                                f"{summary_activation!r} failed to build: {type(err).__name__}: {err}")
    ids = np.random.default_rng(0).integers(0, cfg["vocab_size"], _ACTIVATION_SHAPE).astype(np.int32)
    out = run(model_cache, handle, {"input_ids": ids}, flags={"output_hidden_states": True})
    weights = adapter.get_weights(handle)
    hidden = [np.asarray(h, np.float64) for h in out.fields["hidden_states"]]
    bias = nm.additive_mask(np.ones(hidden[0].shape[:2]), causal=False)
    layer = nm.layer_weights(weights, spec_class(class_name).param_prefix, 0)

    def feed_forward(act):
        return nm.encoder_layer(hidden[0], layer, dict(cfg, hidden_act=act), bias)[0]

    def summary_logits(act):
        x = ref.linear(hidden[-1][:, 0], weights["sequence_summary.summary.weight"],
                       weights["sequence_summary.summary.bias"])
        x = ref.ACTIVATIONS[act](x)
        return ref.linear(x, weights["classifier.weight"], weights["classifier.bias"]).reshape(ids.shape[:2])

    choices = {"hidden_act": load_spec().config.field("hidden_act").choices,
               "summary_activation": load_spec().config.field("summary_activation").choices}
    blame_alternative(check, hidden[1], feed_forward(hidden_act),
                      [(f"activation.{hidden_act}", f"hidden_act={alt!r} (config: {hidden_act!r})", feed_forward(alt))
                       for alt in choices["hidden_act"] if alt != hidden_act])
    check.allclose(hidden[1], feed_forward(hidden_act), clause=hidden_clause, kind=REFERENCE_KIND,
                   field="hidden_states")
    logits = out.fields["logits"]
    blame_alternative(check, logits, summary_logits(summary_activation),
                      [(summary_clause, f"summary_activation={alt!r} (config: {summary_activation!r})",
                        summary_logits(alt)) for alt in choices["summary_activation"] if alt != summary_activation])
    check.allclose(logits, summary_logits(summary_activation), clause=summary_clause, kind=REFERENCE_KIND,
                   field="logits")
