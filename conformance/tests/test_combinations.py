"""Combinations (spec/data/combinations.yaml): features in pairs. The calls of conformance.combinations'
pairwise selection meet every pair of features that share a part of the model in some class and that its
factors can make (config options, positions, padding masks, head masks in every form, output flags, the
class; token types always passed); each call's outputs, hidden states and attentions are recomputed by the float64 NumPy
model from the same inputs and weights (drawn at the config's initializer_range). A fault that shows only
when two features meet (a padding mask with relative positions, a per-layer head mask with two layers, an
epsilon in the generator head with the embedding projection) is compared here at least once.

Shape keys: B batch, S sequence, L layers, N heads, H hidden.
"""
from __future__ import annotations

import numpy as np

import pytest

from conformance import combinations as C
from conformance import numpy_model as nm
from conformance.checks import ClauseFailure
from conformance.plugin import frameworks_under_test
from conformance.tests._helpers import REFERENCE_KIND, build, drawn_weights, run, spec_class
from spec import load_spec


def pytest_generate_tests(metafunc):
    """One test per call of the framework's planned selection (conformance.combinations.planned), so that
    a defect of one call (an expected failure) does not hide the others."""
    if "row" not in metafunc.fixturenames:
        return
    rows = [(framework, k, row) for framework in frameworks_under_test(metafunc.config)
            for k, row in enumerate(C.planned(framework).rows)]
    metafunc.parametrize("row", rows or [None], ids=[f"{k + 1:02d}-{r.class_name}" for _, k, r in rows] or ["none"])


def _clauses(row: C.Row, cfg) -> list[str]:
    """The architecture clauses a row's call goes through."""
    head = spec_class(row.class_name).loss
    parts = ["embeddings", "self_attention", "attention_mask", "attention_output", "feed_forward"]
    parts += ["embeddings_project"] if cfg["embedding_size"] != cfg["hidden_size"] else []
    parts += ["relative_positions"] if cfg["position_embedding_type"] != "absolute" else []
    parts += [load_spec().sections["combinations"].head_parts[head]] if head else []
    return [f"architecture.{p}" for p in parts] + [f"activation.{cfg['hidden_act']}"]


def _expected(row: C.Row, cfg, weights, inputs, flags) -> list[tuple[str, str, object]]:
    """(field, clause, NumPy value) of every field to compare, nearest the inputs first: attentions
    (architecture.self_attention), hidden states (the layers: architecture.feed_forward), then the head's
    fields (its architecture clause) or the last hidden state."""
    spec_cls = spec_class(row.class_name)
    hidden, attentions = nm.encoder(weights, spec_cls.param_prefix, cfg, inputs["input_ids"],
                                    inputs.get("attention_mask"), inputs.get("token_type_ids"),
                                    inputs.get("position_ids"), inputs.get("head_mask"))
    want = [("attentions", "architecture.self_attention", attentions)] if flags.get("output_attentions") else []
    want += [("hidden_states", "architecture.feed_forward", hidden)] if flags.get("output_hidden_states") else []
    if spec_cls.loss:
        head = f"architecture.{load_spec().sections['combinations'].head_parts[spec_cls.loss]}"
        want += [(name, head, value) for name, value in
                 nm.head_outputs(spec_cls.loss, hidden[-1], weights, spec_cls.param_prefix, cfg).items()]
    else:
        want.append(("last_hidden_state", "architecture.feed_forward", hidden[-1]))
    return want


def test_feature_pairs_recomputed(check, adapter, caps, model_cache, row):
    """One call of the pairwise selection against the NumPy model, within what the implementation declares
    (conformance.combinations.fit); a mismatch names the call's features."""
    if row is None or row[0] != adapter.framework:
        pytest.skip(f"a call of the {row[0] if row else 'no'} framework's selection")
    _, k, planned = row
    row = C.fit(planned, caps)
    caps.skip_unless(f"class:{row.class_name}")
    cfg = C.config_of(row, caps)
    inputs, flags = C.inputs_of(row, cfg, caps.inputs, seed=k)
    weights = drawn_weights(adapter.get_weights(build(model_cache, row.class_name, cfg)), cfg["initializer_range"],
                            seed=k)
    out = run(model_cache, model_cache.get(row.class_name, cfg, weights=weights), inputs, flags=flags)
    check.clause(*_clauses(row, cfg))
    try:
        for name, clause, want in _expected(row, cfg, weights, inputs, flags):
            got = out.fields.get(name)
            check.that(got is not None, clause=clause, message=f"the call returned no {name}")
            for got_piece, want_piece in (zip(got, want) if isinstance(want, list) else [(got, want)]):
                check.allclose(got_piece, want_piece, clause=clause, kind=REFERENCE_KIND, field=name)
    except ClauseFailure as err:
        check.fail(err.clause, f"{row.id}: {err}", err.field)
