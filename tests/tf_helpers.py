"""Shared helpers of the tests/test_tf_*.py files: tiny configs, the PyTorch reference model with the
same weights, tolerance checks from the spec."""
from __future__ import annotations

import numpy as np

from spec import load_spec

TINY = dict(vocab_size=40, embedding_size=12, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=24, max_position_embeddings=24, type_vocab_size=3, num_labels=3)


def tiny_config(**overrides):
    from impl_tf import ElectraConfig

    return ElectraConfig(**{**TINY, **overrides})


def tolerance(field: str | None = None, kind: str = "golden"):
    return load_spec().tolerance(kind, "float32", "cpu", field)


def assert_close(actual, reference, field: str | None = None, kind: str = "golden", where: str = ""):
    """|actual - reference| <= atol + rtol |reference| with the spec's tolerance; returns the max error."""
    tol = tolerance(field, kind)
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, f"{where}{field}: shape {actual.shape} != {reference.shape}"
    assert not np.isnan(actual).any(), f"{where}{field}: NaN"
    np.testing.assert_allclose(actual, reference, atol=tol.atol, rtol=tol.rtol, err_msg=f"{where}{field}")
    return float(np.max(np.abs(actual - reference))) if actual.size else 0.0


def torch_reference(class_name: str, config, seed: int = 0):
    """The transformers PyTorch class named by the spec's ``reference`` for ``class_name``, with random
    weights (seeded), in eval mode, built from ``config``'s dict."""
    import torch
    import transformers

    torch.manual_seed(seed)
    pt_name = load_spec().classes[class_name].reference
    pt_config = transformers.ElectraConfig(**config.to_dict())
    model = getattr(transformers, pt_name)(pt_config).eval()
    with torch.no_grad():  # make biases and LayerNorm parameters non-trivial
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def torch_state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def run_torch(model, inputs: dict):
    import torch

    with torch.no_grad():
        out = model(**{k: (torch.from_numpy(np.asarray(v)) if v is not None else None) for k, v in inputs.items()},
                    return_dict=True)
    return out
