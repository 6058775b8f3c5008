"""impl_flax against the PyTorch reference (transformers' Electra* classes) with the same weights: every
class and every output field, plus the config options that change the numbers (behaviour.golden).

The comparisons run with jax.disable_jit(): eager primitives are compiled once per shape and reused
across cases, which keeps this file fast; jitted == eager is tested in test_flax_jit.py.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest

from flax_helpers import FLAX_CLASSES, build, compare_outputs, inputs_for, tiny_config, torch_call, torch_params, \
    torch_reference

# slow: the conformance numerics family checks the same against PyTorch golden data
pytestmark = [pytest.mark.reference, pytest.mark.slow]

MC = "FlaxElectraForMultipleChoice"
CASES = (
    [(c, {}) for c in FLAX_CLASSES]
    + [(c, dict(position_embedding_type="relative_key_query", embedding_size=16))
       for c in ("FlaxElectraModel", "FlaxElectraForCausalLM")]
    + [("FlaxElectraModel", dict(position_embedding_type="relative_key", hidden_act="gelu_new")),
       ("FlaxElectraForCausalLM", dict(position_embedding_type="relative_key", add_cross_attention=False)),
       ("FlaxElectraForMaskedLM", dict(tie_word_embeddings=False)),
       ("FlaxElectraForCausalLM", dict(tie_word_embeddings=False)),
       (MC, dict(summary_type="mean", summary_activation="tanh")),
       (MC, dict(summary_type="last", summary_use_proj=False)),
       (MC, dict(summary_type="cls_index", summary_activation=None)),
       ("FlaxElectraForSequenceClassification", dict(num_labels=3, classifier_dropout=0.3)),
       ("FlaxElectraForTokenClassification", dict(num_labels=4))]
    + [("FlaxElectraForPreTraining", dict(hidden_act="relu"))]
)


def _check(class_name, overrides, head_mask=None, seed=0):
    config = tiny_config(class_name, **overrides)
    pt_model = torch_reference(class_name, config, seed)
    model = build(class_name, config, _do_init=False)
    model.params = torch_params(class_name, config, pt_model)
    inputs = inputs_for(class_name, config, seed=seed)
    if head_mask is not None:
        inputs["head_mask"] = head_mask
    flags = dict(output_hidden_states=True, output_attentions=True)
    with jax.disable_jit():
        ours = model(**inputs, **flags)
    reference = torch_call(pt_model, inputs, **flags)
    assert set(ours.keys()) == {k for k in reference.keys() if k not in ("loss", "past_key_values")}
    return compare_outputs(ours, reference, where=f"{class_name} {overrides}: ")


@pytest.mark.parametrize("class_name,overrides", CASES, ids=[f"{c[12:]}-{o}" for c, o in CASES])
def test_every_field_matches_pytorch(class_name, overrides):
    worst = _check(class_name, overrides)
    print(f"{class_name} {overrides}: max abs error {worst:.2e}")


@pytest.mark.parametrize("shape", [(2,), (2, 2)])
def test_fractional_head_mask_matches_pytorch(shape):
    mask = np.random.default_rng(1).uniform(0, 1, shape).astype(np.float32)
    mask.flat[0] = 0.0
    _check("FlaxElectraModel", {}, head_mask=mask)


@pytest.mark.parametrize("name", ["gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu",
                                  "swish", "tanh", "sigmoid", "linear"])
def test_activation_functions_match_pytorch(name):
    import torch
    from transformers.activations import get_activation

    from impl_flax.modeling.layers import activation

    x = np.linspace(-6, 6, 101, dtype=np.float32)
    expected = get_activation(name)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(np.asarray(activation(name)(x)), expected, atol=1e-6, rtol=1e-5)
