"""Keras layers of the ELECTRA family; each layer's ``name`` is its checkpoint scope."""
