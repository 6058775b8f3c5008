"""Framework-neutral pieces shared by impl_tf and impl_flax: config, outputs, checkpoint files,
hub resolution and the tokenizer. Nothing here imports TensorFlow or JAX."""
from electra_core.config import ElectraConfig  # noqa: F401
