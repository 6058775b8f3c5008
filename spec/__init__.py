"""The machine-readable ELECTRA API spec: YAML data under ``spec/data``, each file validated by
``spec/schema/<stem>.schema.json`` (JSON Schema 2020-12), read into typed immutable objects.

    from spec import load_spec
    S = load_spec()                                   # cached
    S.config.field("hidden_size").default
    S.classes["FlaxElectraModel"].call_arg("token_type_ids").default   # 'zeros_like(input_ids)'
    S.tolerance("golden", "float32", "cpu", "logits")                 # Tolerance(atol, rtol)
    S.clauses()["error.input_ids.out_of_range"]
"""
from spec.loader import SpecError, load_spec  # noqa: F401
from spec.shapes import eval_condition, eval_dim, eval_shape, parse_shape, shape_symbols  # noqa: F401
