"""Framework-neutral checkpoint handling: canonical (PyTorch) parameter names and shapes from
``spec/data/params.yaml``, conversion to the Flax param tree and TF weight names, and reading and
writing model.safetensors, flax_model.msgpack and tf_model.h5. Imports numpy, safetensors, msgpack,
h5py and huggingface_hub only (never TensorFlow or JAX)."""
from electra_core.checkpoint.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    CheckpointPathError,
    CheckpointSaveError,
    CheckpointShapeError,
    CheckpointSizeError,
    CheckpointStorageError,
    NonFiniteWeightsWarning,
)
from electra_core.checkpoint.matching import MatchResult, match_state
from electra_core.checkpoint.names import (
    flax_to_pt,
    pt_to_flax,
    pt_to_tf,
    pt_to_tf_name,
    tf_to_pt,
    tf_to_pt_name,
)
from electra_core.checkpoint.param_spec import expected_shapes
from electra_core.checkpoint.state import LoadedState, load_state, save_state

__all__ = [
    "CheckpointError", "CheckpointNotFoundError", "CheckpointPathError", "CheckpointSaveError", "CheckpointShapeError",
    "CheckpointSizeError", "CheckpointStorageError", "LoadedState", "NonFiniteWeightsWarning",
    "MatchResult", "expected_shapes", "flax_to_pt", "load_state", "match_state", "pt_to_flax", "pt_to_tf",
    "pt_to_tf_name", "save_state", "tf_to_pt", "tf_to_pt_name",
]
