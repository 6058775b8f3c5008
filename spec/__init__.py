"""The machine-readable ELECTRA API spec: YAML data under ``spec/data``, validated by ``schema.json``.

    from spec import load_spec
    S = load_spec()            # typed, immutable, cached
    S.config.field("hidden_size").default
"""
from spec.loader import load_spec  # noqa: F401
