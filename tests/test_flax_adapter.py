"""The conformance adapter of impl_flax implements the protocol and round-trips weights and files."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from conformance.adapters.base import Adapter
from conformance.adapters.ours_flax import FlaxAdapter
from flax_helpers import TINY, inputs_for
from spec import load_spec


@pytest.fixture(scope="module")
def adapter():
    return FlaxAdapter()


def test_adapter_satisfies_the_protocol(adapter):
    assert isinstance(adapter, Adapter)
    protocol = {n for n, v in vars(Adapter).items() if callable(v) and not n.startswith("_")}
    for name in protocol:
        assert callable(getattr(adapter, name)), name
        ours = inspect.signature(getattr(FlaxAdapter, name))
        assert list(ours.parameters) == list(inspect.signature(getattr(Adapter, name)).parameters), name
    assert adapter.name == "flax" and adapter.framework == "flax"
    assert adapter.classes() == [c.name for c in load_spec().classes_for("flax")]
    assert adapter.supports("FlaxElectraModel", "bfloat16").ok
    assert not adapter.supports("FlaxElectraModel", "int8").ok
    assert "cpu" in adapter.available_devices()
    assert "past_key_values" in adapter.call_signature("FlaxElectraForCausalLM").parameters


def test_weights_round_trip_and_runs_agree(adapter, tmp_path):
    class_name = "FlaxElectraForMaskedLM"
    config = {**TINY, "num_hidden_layers": 1}
    first = adapter.build(class_name, config, seed=0)
    second = adapter.build(class_name, config, seed=1)
    weights = adapter.get_weights(first)
    assert weights["electra.encoder.layer.0.attention.self.query.weight"].shape == (16, 16)
    adapter.load_weights(second, weights)
    inputs = inputs_for(class_name, first.native.config)
    a = adapter.run(first, inputs, compiled=True, tuple_form=True, flags={"output_hidden_states": True})
    b = adapter.run(second, inputs, compiled=False)
    np.testing.assert_allclose(a.fields["logits"], b.fields["logits"], atol=1e-5)
    assert a.output_class == "FlaxMaskedLMOutput" and len(a.tuple_form) == 2
    with pytest.raises(ValueError, match="missing"):
        adapter.load_weights(second, {k: v for k, v in weights.items() if "LayerNorm" not in k})
    adapter.save(first, str(tmp_path), formats=("safetensors", "msgpack"))
    loaded = adapter.load(class_name, str(tmp_path))
    np.testing.assert_allclose(adapter.run(loaded, inputs).fields["logits"], b.fields["logits"], atol=1e-5)


def test_incremental_run_matches_the_full_pass(adapter):
    handle = adapter.build("FlaxElectraForCausalLM", {**TINY, "is_decoder": True})
    inputs = inputs_for("FlaxElectraForCausalLM", handle.native.config, pad=False)
    full = adapter.run(handle, inputs).fields["logits"]
    np.testing.assert_allclose(adapter.run_incremental(handle, inputs, 2), full, atol=1e-5)
