"""The hf-tf / hf-flax adapters over transformers' classes (slow: each imports TF or JAX in a subprocess)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.reference]

SCRIPT = '''
import os, sys
import numpy as np
from conformance.registry import resolve_adapter

adapter = resolve_adapter(sys.argv[1])
config = dict(vocab_size=32, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=16, max_position_embeddings=16)
handle = adapter.build(sys.argv[2], config, seed=0)
weights = adapter.get_weights(handle)
assert "electra.embeddings.word_embeddings.weight" in weights, sorted(weights)[:5]
shifted = {name: value + 0.25 for name, value in weights.items()}
adapter.load_weights(handle, shifted)
back = adapter.get_weights(handle)
assert max(float(np.abs(back[n] - shifted[n]).max()) for n in shifted) == 0.0
ids = np.array([[1, 2, 3, 4]], dtype=np.int32)
eager = adapter.run(handle, {"input_ids": ids}, flags={"output_hidden_states": True}, tuple_form=True)
compiled = adapter.run(handle, {"input_ids": ids}, compiled=True)
assert float(np.abs(eager.fields["logits"] - compiled.fields["logits"]).max()) < 1e-5
assert len(eager.fields["hidden_states"]) == 2 and eager.tuple_form[0].shape == (1, 4, 32)
try:
    adapter.load_weights(handle, {n: v for n, v in shifted.items() if "LayerNorm" not in n})
except ValueError as err:
    assert "missing" in str(err)
else:
    raise AssertionError("loading an incomplete state dict did not raise")
if adapter.framework == "tf":
    import tensorflow as tf
    assert type(tf.keras.layers.Dense(2)).__module__.startswith("keras."), "tf.keras is no longer Keras 3"
    assert os.environ.get("TF_USE_LEGACY_KERAS") is None
print("OK", adapter.version())
'''


@pytest.mark.parametrize("impl, class_name", [("hf-flax", "FlaxElectraForMaskedLM"),
                                              ("hf-tf", "TFElectraForMaskedLM")])
def test_adapter_weights_run_and_compile(impl, class_name, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), impl, class_name], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0 and "OK transformers" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
