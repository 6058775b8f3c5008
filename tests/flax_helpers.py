"""Shared helpers of the tests/test_flax_*.py files: tiny configs, inputs per class, the PyTorch
reference with the same weights, tolerance checks from the spec."""
from __future__ import annotations

import numpy as np

from spec import load_spec

TINY = dict(vocab_size=32, embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=20, max_position_embeddings=16, type_vocab_size=2)
FLAX_CLASSES = tuple(c.name for c in load_spec().classes_for("flax"))


def tiny_config(class_name: str = "FlaxElectraModel", **overrides):
    from impl_flax import ElectraConfig

    values = {**TINY, **overrides}
    if class_name == "FlaxElectraForCausalLM":
        values.setdefault("is_decoder", True)
    return ElectraConfig(**values)


def build(class_name: str, config=None, **kwargs):
    import impl_flax

    return getattr(impl_flax, class_name)(config or tiny_config(class_name), **kwargs)


def is_multiple_choice(class_name: str) -> bool:
    return load_spec().classes[class_name].lead == "batch choices"


def inputs_for(class_name: str, config, batch: int = 2, seq: int = 5, choices: int = 3, seed: int = 0,
               pad: bool = True) -> dict:
    """input_ids, attention_mask (last positions of the last example padded) and token_type_ids,
    shaped (B, S) or (B, C, S) for multiple choice."""
    rng = np.random.default_rng(seed)
    lead = (batch, choices) if is_multiple_choice(class_name) else (batch,)
    ids = rng.integers(1, config.vocab_size, lead + (seq,))
    mask = np.ones_like(ids)
    if pad:
        mask[-1, ..., seq - 2:] = 0
    types = rng.integers(0, config.type_vocab_size, ids.shape)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def tolerance(field: str | None = None, kind: str = "golden", dtype: str = "float32"):
    return load_spec().tolerance(kind, dtype, "cpu", field)


def assert_close(actual, reference, field: str | None = None, kind: str = "golden", where: str = "",
                 dtype: str = "float32") -> float:
    """|actual - reference| <= atol + rtol |reference| with the spec's tolerance; returns the max error."""
    tol = tolerance(field, kind, dtype)
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, f"{where}{field}: shape {actual.shape} != {reference.shape}"
    assert not np.isnan(actual).any(), f"{where}{field}: NaN"
    np.testing.assert_allclose(actual, reference, atol=tol.atol, rtol=tol.rtol, err_msg=f"{where}{field}")
    return float(np.max(np.abs(actual - reference))) if actual.size else 0.0


def compare_outputs(ours, reference, kind: str = "golden", where: str = "", skip=("past_key_values",)) -> float:
    """Compare every field of our output with the same field of another output (tuples elementwise)."""
    worst = 0.0
    for name in ours.keys():
        if name in skip:
            continue
        a, b = ours[name], reference[name]
        pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
        for x, y in pairs:
            y = y.detach().numpy() if hasattr(y, "detach") else y
            worst = max(worst, assert_close(x, y, name, kind, where))
    return worst


def torch_reference(class_name: str, config, seed: int = 0):
    """The PyTorch reference class of ``class_name`` (classes.yaml ``reference``) with seeded random
    weights, in eval mode."""
    import torch
    import transformers

    torch.manual_seed(seed)
    pt_class = getattr(transformers, load_spec().classes[class_name].reference)
    return pt_class(transformers.ElectraConfig(**config.to_dict())).eval()


def torch_params(class_name: str, config, pt_model) -> dict:
    """Our Flax param tree holding the PyTorch model's weights (through electra_core.checkpoint)."""
    from electra_core.checkpoint import expected_shapes, match_state, pt_to_flax

    state = {k: v.detach().numpy() for k, v in pt_model.state_dict().items()}
    matched = match_state(expected_shapes(class_name, config), state)
    assert not matched.missing and not matched.unexpected, (matched.missing, matched.unexpected)
    return pt_to_flax(matched.state)


def torch_call(pt_model, inputs: dict, **flags):
    import torch

    with torch.no_grad():
        return pt_model(**{k: torch.tensor(np.asarray(v)) for k, v in inputs.items()}, **flags)
