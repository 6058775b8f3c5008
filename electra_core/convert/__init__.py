"""Converters from other checkpoints into ELECTRA checkpoint directories (``python -m electra_core.convert.<name>``)."""
