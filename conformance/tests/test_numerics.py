"""Family 7, numerics: every class matches the PyTorch reference on the golden data
(conformance/golden: weights, inputs and every output field; clause behaviour.golden), and the
TF and Flax implementations agree on the same weights (behaviour.cross_framework). A case whose config
adds cross-attention feeds encoder_hidden_states (B, Se, H) and a padded encoder_attention_mask (B, Se),
and its `cross_attentions` are compared under architecture.cross_attention.

One test per golden case (its id is in the test id); the class under test is the spec class of the
adapter's framework whose ``reference`` is the case's PyTorch class. Flax classes return no loss;
their standalone loss functions are checked on the golden loss through the optional adapter method
``loss(handle, outputs, inputs)`` (see test_losses.py). The cross-framework test compares the
implementation under test with this project's implementation of the other framework
(adapters ``tf`` / ``flax``), run in the same process. Both sides also meet the golden data within the same
float32 allowance, so outside the thorough profile the comparison runs on a covering subset of the cases
(``cross_cases``): the bare encoder of every config group, and one case of every other class.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance.golden_data import load_cases
from conformance.tests._golden import (capabilities_of, class_under_test, compare_fields, expected_fields, golden_run,
                                       other_outputs, our_other_adapter)
from conformance.tests._helpers import thorough
from spec import load_spec

GOLDEN = "behaviour.golden"
CROSS = "behaviour.cross_framework"
CROSS_ATTENTION = "architecture.cross_attention"

CASES = {c.id: c for c in load_cases()}
BARE_ENCODER = "ElectraModel"


def cross_cases(case_ids: list[str]) -> list[str]:
    """The golden cases (ids "<group>.<reference class>") the cross-framework test compares outside the
    thorough profile: every group's bare-encoder case (the class every partial implementation offers; a
    group without one gives its first case), then one case of each class not covered yet, taken from the
    group with the fewest chosen cases so far, so that the heads meet different configs."""
    split = [tuple(c.split(".", 1)) for c in sorted(case_ids)]
    groups = sorted({g for g, _ in split})
    chosen = []
    for group in groups:
        classes = [k for g, k in split if g == group]
        chosen.append((group, BARE_ENCODER if BARE_ENCODER in classes else classes[0]))
    for cls in sorted({k for _, k in split} - {k for _, k in chosen}):
        used = {g: sum(1 for c, _ in chosen if c == g) for g in groups}
        chosen.append(min(((g, k) for g, k in split if k == cls), key=lambda gk: (used[gk[0]], gk[0])))
    return sorted(f"{g}.{k}" for g, k in chosen)


def config_clauses(case) -> list[str]:
    """The activation and decision clauses a golden case's config puts to the test: matching the
    reference with these settings is only possible when they are implemented as the spec decides."""
    cfg = case.config()
    out = [f"activation.{cfg.get('hidden_act', 'gelu')}"]
    if cfg.get("add_cross_attention"):
        out.append(CROSS_ATTENTION)
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        out.append("decision.relative_position_embeddings")
    if case.reference_class in ("ElectraForMaskedLM", "ElectraForCausalLM"):
        if cfg.get("tie_word_embeddings") is False:
            out.append("decision.tie_word_embeddings")
        if cfg.get("hidden_act", "gelu") != "gelu":
            out.append("decision.generator_activation")
    if case.reference_class == "ElectraForMultipleChoice":
        out.append(f"activation.{cfg.get('summary_activation') or 'linear'}")
        if cfg.get("summary_type", "first") != "first":
            out.append("decision.flax_sequence_summary")
    return out


def cache_arrays(check, class_name: str, case, actual: dict, expected: dict) -> tuple[dict, dict]:
    """A returned per-layer cache (TF) as (2, B, N, Sk, D) arrays to compare with the reference's: each layer must be
    the self-attention's (key, value) pair (decision.tf_cache_with_cross_attention). In a cached case the arrays
    are compared at the real positions only: a padded query that sees only padded keys has no defined output
    (decision.mask_value), and the reference built its cache one token per call."""
    field = next(f for f in load_spec().output_of(class_name).fields if f.name == "past_key_values")
    if field.container is not None:  # an opaque cache (Flax): presence is all the spec says
        return actual, expected
    sizes = sorted({len(layer) for layer in actual["past_key_values"]})
    check.that(sizes == [2], clause=field.id,
               message=f"past_key_values holds {sizes} tensors per layer; the spec's cache is the self-attention's "
                       f"(key, value) pair (decision.tf_cache_with_cross_attention)")
    layers = tuple(np.stack([np.asarray(k), np.asarray(v)]) for k, v in actual["past_key_values"])
    reference = expected["past_key_values"]
    if case.cache_prefix is not None:
        real = case.inputs()["attention_mask"][None, :, None, :, None]  # over (2, B, N, Sk, D)
        layers, reference = tuple(layer * real for layer in layers), tuple(layer * real for layer in reference)
    return {**actual, "past_key_values": layers}, {**expected, "past_key_values": reference}


@pytest.mark.parametrize("golden", sorted(CASES))
def test_matches_golden(check, adapter, caps, device, model_cache, golden):
    case = CASES[golden]
    class_name = class_under_test(adapter, caps, case, device)
    check.clause(GOLDEN, *config_clauses(case))
    handle, actual = golden_run(adapter, caps, device, model_cache, case, class_name)
    expected = expected_fields(case, class_name, caps)
    # the cross-attention probabilities are that block's own output (the inputs carry encoder_hidden_states
    # (B, Se, H) and a padded encoder_attention_mask (B, Se))
    cross = {"cross_attentions": CROSS_ATTENTION} if case.config().get("add_cross_attention") else {}
    if "past_key_values" in expected and actual.get("past_key_values") is not None:
        actual, expected = cache_arrays(check, class_name, case, actual, expected)
    compare_fields(check, class_name, actual, expected, kind="golden", clause=GOLDEN, field_clauses=cross)
    spec_class = load_spec().classes[class_name]
    if "loss" in case.outputs() and spec_class.loss and not spec_class.labels and not caps.lacking("method:loss"):
        labels = load_spec().raw("losses")["losses"][spec_class.loss]["labels"]
        loss_inputs = {k: v for k, v in case.inputs().items() if k in labels or k == "attention_mask"}
        loss = adapter.loss(handle, actual, loss_inputs)
        check.allclose(loss, case.outputs()["loss"], clause=f"loss.{spec_class.loss}", kind="golden", field="loss")


@pytest.mark.parametrize("golden", sorted(CASES) if thorough() else cross_cases(list(CASES)))
def test_matches_other_framework(check, adapter, caps, device, model_cache, golden):
    case = CASES[golden]
    class_name = class_under_test(adapter, caps, case, device)
    other = our_other_adapter(adapter.framework)
    other_class = class_under_test(other, capabilities_of(other), case, device)
    check.clause(CROSS)
    _, mine = golden_run(adapter, caps, device, model_cache, case, class_name)
    theirs = other_outputs(other, device, case, other_class)
    # fields only one side returns (the TF loss, a TF cache) are not compared, nor the caches of a cached case:
    # TF's is per-layer (key, value) tensors, Flax's an opaque container
    compare_fields(check, class_name, mine,
                   {k: v for k, v in theirs.items() if k in mine and k != "past_key_values"},
                   kind="cross_framework", clause=CROSS)
