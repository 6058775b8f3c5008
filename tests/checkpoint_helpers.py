"""A tiny config and a random state dict of its masked LM, shared by the checkpoint file tests."""
from __future__ import annotations

import numpy as np

from electra_core import ElectraConfig
from electra_core.checkpoint import expected_shapes


def tiny_config() -> ElectraConfig:
    return ElectraConfig(vocab_size=32, embedding_size=8, hidden_size=12, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=16, max_position_embeddings=16)


def random_state(config: ElectraConfig, seed: int, class_name: str = "ElectraForMaskedLM") -> dict[str, np.ndarray]:
    """Standard-normal float32 values for every canonical parameter of ``class_name``."""
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in expected_shapes(class_name, config).items()}
