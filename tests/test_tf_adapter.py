"""The conformance adapter of impl_tf satisfies the protocol of conformance/adapters/base.py and
round-trips weights under canonical names."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from conformance.adapters.base import Adapter, Support
from conformance.adapters.ours_tf import TFAdapter
from spec import load_spec
from tf_helpers import TINY, assert_close

ADAPTER = TFAdapter()


def test_the_adapter_implements_the_protocol():
    assert isinstance(ADAPTER, Adapter)
    assert (ADAPTER.name, ADAPTER.framework) == ("tf", "tf")
    for name, member in inspect.getmembers(Adapter, inspect.isfunction):
        if not name.startswith("_"):
            assert list(inspect.signature(getattr(TFAdapter, name)).parameters) == \
                list(inspect.signature(member).parameters), name
    assert set(ADAPTER.classes()) == {c.name for c in load_spec().classes_for("tf")}
    assert "cpu" in ADAPTER.available_devices()
    assert ADAPTER.supports("TFElectraModel") == Support(True)
    assert not ADAPTER.supports("FlaxElectraModel").ok and not ADAPTER.supports("TFElectraModel", "int8").ok
    assert list(ADAPTER.call_signature("TFElectraForQuestionAnswering").parameters)[-3:] == \
        ["start_positions", "end_positions", "training"]


def test_weights_round_trip_under_canonical_names():
    source = ADAPTER.build("TFElectraForMaskedLM", dict(TINY), seed=1)
    target = ADAPTER.build("TFElectraForMaskedLM", dict(TINY), seed=2)
    weights = ADAPTER.get_weights(source)
    assert "electra.encoder.layer.0.attention.self.query.weight" in weights
    ADAPTER.load_weights(target, weights)
    for name, value in ADAPTER.get_weights(target).items():
        np.testing.assert_array_equal(value, weights[name], err_msg=name)
    ids = np.random.RandomState(0).randint(0, 40, (2, 5))
    np.testing.assert_array_equal(ADAPTER.run(source, {"input_ids": ids}).fields["logits"],
                                  ADAPTER.run(target, {"input_ids": ids}).fields["logits"])
    with pytest.raises(ValueError, match="missing"):
        ADAPTER.load_weights(target, {k: v for k, v in weights.items() if "qa" not in k and "LayerNorm" not in k})


def test_run_formats_compiled_and_tuple_form_agree():
    handle = ADAPTER.build("TFElectraForTokenClassification", dict(TINY))
    rng = np.random.RandomState(3)
    inputs = {"input_ids": rng.randint(0, 40, (2, 5)), "token_type_ids": rng.randint(0, 3, (2, 5)),
              "labels": rng.randint(0, 3, (2, 5))}
    ref = ADAPTER.run(handle, inputs, tuple_form=True, flags={"output_attentions": True})
    assert ref.output_class == "TFTokenClassifierOutput" and list(ref.fields) == ["loss", "logits", "attentions"]
    assert len(ref.tuple_form) == 3
    for fmt in ("list", "dict"):
        np.testing.assert_array_equal(ADAPTER.run(handle, inputs, input_format=fmt).fields["logits"],
                                      ref.fields["logits"])
    compiled = ADAPTER.run(handle, inputs, compiled=True, flags={"output_attentions": True})
    assert_close(compiled.fields["logits"], ref.fields["logits"], "logits", kind="compiled_vs_eager")
    with pytest.raises(ValueError, match="input_ids"):  # checked on the host before the compiled graph
        ADAPTER.run(handle, {"input_ids": np.full((1, 3), 99)}, compiled=True)


def test_incremental_run_and_save_load(tmp_path):
    handle = ADAPTER.build("TFElectraForCausalLM", dict(TINY, is_decoder=True))
    ids = np.random.RandomState(4).randint(0, 40, (2, 6))
    full = ADAPTER.run(handle, {"input_ids": ids}).fields["logits"]
    stepwise = ADAPTER.run_incremental(handle, {"input_ids": ids, "attention_mask": np.ones_like(ids)}, 2)
    assert_close(stepwise, full, "logits", kind="compiled_vs_eager")
    ADAPTER.save(handle, str(tmp_path), formats=("safetensors", "h5"))
    loaded = ADAPTER.load("TFElectraForCausalLM", str(tmp_path))
    np.testing.assert_array_equal(ADAPTER.run(loaded, {"input_ids": ids}).fields["logits"], full)
