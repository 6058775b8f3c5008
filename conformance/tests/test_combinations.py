"""Combinations (spec/data/combinations.yaml): features in pairs. The calls of conformance.combinations'
pairwise selection meet every pair of features that share a part of the model in some class and that the
spec does not keep apart: config options (the multiple-choice summary's included), positions, padding
masks, head masks in every form, inputs_embeds, encoder states and their mask, a key/value cache, labels,
the output flags and the tuple form, the class. Each call's outputs (hidden states, attentions, cross-
attentions, the cache's keys and values, the head's fields, the loss) are recomputed by the float64 NumPy
model and losses from the same inputs and weights (drawn at the config's initializer_range); a cached
call's outputs are the full pass's rows past the cached prefix. A fault that shows only when two features
meet (a padding mask with relative positions, a per-layer head mask with cross-attention, positions with a
cache, the last-token summary with right padding) is compared here at least once.

Shape keys: B batch, C choices, S sequence, Se encoder sequence, L layers, N heads, H hidden, D head dim.
"""
from __future__ import annotations

import numpy as np

import pytest

from conformance import combinations as C
from conformance import numpy_model as nm
from conformance.checks import ClauseFailure
from conformance.plugin import frameworks_under_test
from conformance.tests._helpers import REFERENCE_KIND, build, drawn_weights, output_spec, run, spec_class
from conformance.tests._losses import expected_loss
from spec import load_spec


def pytest_generate_tests(metafunc):
    """One test per call of the framework's planned selection (conformance.combinations.planned), so that
    a defect of one call (an expected failure) does not hide the others."""
    if "row" not in metafunc.fixturenames:
        return
    rows = [(framework, k, row) for framework in frameworks_under_test(metafunc.config)
            for k, row in enumerate(C.planned(framework).rows)]
    metafunc.parametrize("row", rows or [None], ids=[f"{k + 1:02d}-{r.class_name}" for _, k, r in rows] or ["none"])


def _clauses(row: C.Row, cfg, call: C.Call) -> list[str]:
    """The clauses a row's call goes through."""
    head = spec_class(row.class_name).loss
    parts = ["embeddings", "self_attention", "attention_mask", "attention_output", "feed_forward"]
    parts += ["embeddings_project"] if cfg["embedding_size"] != cfg["hidden_size"] else []
    parts += ["relative_positions"] if cfg["position_embedding_type"] != "absolute" else []
    parts += ["cross_attention"] if "encoder_hidden_states" in call.inputs else []
    parts += [load_spec().sections["combinations"].head_parts[head]] if head else []
    clauses = [f"architecture.{p}" for p in parts] + [f"activation.{cfg['hidden_act']}"]
    clauses += ["behaviour.decoding_cache"] if call.prefix is not None else []
    clauses += ["behaviour.return_tuple"] if call.tuple_form else []
    return clauses


def _flat(x, lead: tuple[int, ...]):
    """(B, C, ...) -> (B*C, ...) for multiple choice; other inputs as they are."""
    return None if x is None else np.reshape(x, (-1, *np.shape(x)[len(lead):])) if len(lead) == 2 else x


def _expected(row: C.Row, cfg, weights, call: C.Call) -> list[tuple[str, str, object]]:
    """(field, clause, NumPy value) of every field to compare, nearest the inputs first: attentions
    (architecture.self_attention), cross-attentions, the cache's keys and values, hidden states (the
    layers: architecture.feed_forward), then the head's fields (its architecture clause) or the last hidden
    state, then the loss. A cached call's values are the full pass's rows from the prefix on."""
    spec_cls, inputs, flags = spec_class(row.class_name), call.inputs, call.flags
    lead = (C.BATCH, C.CHOICES) if "choices" in spec_cls.lead else (C.BATCH,)
    enc = nm.encoder(weights, spec_cls.param_prefix, cfg, _flat(inputs.get("input_ids"), lead),
                     _flat(inputs.get("attention_mask"), lead), _flat(inputs.get("token_type_ids"), lead),
                     _flat(inputs.get("position_ids"), lead), inputs.get("head_mask"),
                     inputs_embeds=_flat(inputs.get("inputs_embeds"), lead),
                     encoder_hidden_states=inputs.get("encoder_hidden_states"),
                     encoder_attention_mask=inputs.get("encoder_attention_mask"))
    rows = slice(call.prefix or 0, None)  # the query positions of the (second) call
    output = output_spec(row.class_name)
    want = []
    if flags.get("output_attentions"):
        want.append(("attentions", "architecture.self_attention", [a[:, :, rows] for a in enc.attentions]))
        if enc.cross_attentions and "cross_attentions" in output.field_names:
            want.append(("cross_attentions", "architecture.cross_attention",
                         [a[:, :, rows] for a in enc.cross_attentions]))
    if flags.get("use_cache") and cfg["is_decoder"] and "past_key_values" in output.field_names:
        want.append(("past_key_values", output.field("past_key_values").id, enc.keys_values))
    if flags.get("output_hidden_states"):
        want.append(("hidden_states", "architecture.feed_forward", [h[:, rows] for h in enc.hidden]))
    last = enc.hidden[-1][:, rows]
    if spec_cls.loss:
        head = f"architecture.{load_spec().sections['combinations'].head_parts[spec_cls.loss]}"
        fields = {name: value.reshape(lead) if len(lead) == 2 else value
                  for name, value in nm.head_outputs(spec_cls.loss, last, weights, spec_cls.param_prefix, cfg).items()}
        want += [(name, head, value) for name, value in fields.items()]
        if any(name in inputs for name in spec_cls.labels or ()):
            loss, _ = expected_loss(spec_cls.loss, fields, inputs, cfg)
            want.append(("loss", f"loss.{spec_cls.loss}", loss))
    else:
        want.append(("last_hidden_state", "architecture.feed_forward", last))
    return want


def _returned(out, row: C.Row, call: C.Call, check) -> dict:
    """The call's fields by name: from the tuple form (in the spec's field order, the absent fields left
    out: behaviour.return_tuple) when the row asks for it, else from the output object."""
    if not call.tuple_form:
        return out.fields
    present = [f.name for f in output_spec(row.class_name).fields if out.fields.get(f.name) is not None]
    got = out.tuple_form or ()
    check.equal(len(got), len(present), clause="behaviour.return_tuple",
                what=f"{row.id}: length of the return_dict=False tuple (present fields in order: {present})")
    return dict(zip(present, got))


def _pieces(got, want):
    """(returned, expected) array pairs of one field: tuples per layer, (key, value) pairs per layer."""
    if isinstance(want, list):
        for g, w in zip(got, want):
            yield from _pieces(g, w)
    elif isinstance(want, tuple):
        yield from zip(got, want)
    else:
        yield got, want


def test_feature_pairs_recomputed(check, adapter, caps, model_cache, row):
    """One call of the pairwise selection against the NumPy model, within what the implementation declares
    (conformance.combinations.fit); a mismatch, or an error the call raised, names the call's features."""
    if row is None or row[0] != adapter.framework:
        pytest.skip(f"a call of the {row[0] if row else 'no'} framework's selection")
    _, k, planned = row
    row = C.fit(planned, caps)
    caps.skip_unless(f"class:{row.class_name}")
    cfg = C.config_of(row, caps)
    call = C.call_of(row, cfg, caps.inputs, seed=k)
    clauses = _clauses(row, cfg, call)
    check.clause(*clauses)
    weights = drawn_weights(adapter.get_weights(build(model_cache, row.class_name, cfg)), cfg["initializer_range"],
                            seed=k)
    if cfg["position_embedding_type"] != "absolute":
        table = f"{spec_class(row.class_name).param_prefix}encoder.layer.0.attention.self.distance_embedding.weight"
        check.that(table in weights, clause="decision.relative_position_embeddings",
                   message=f"{row.id}: position_embedding_type={cfg['position_embedding_type']!r} but the model "
                           f"has no {table}")
    handle = model_cache.get(row.class_name, cfg, weights=weights)
    try:
        if call.prefix is not None:
            out = model_cache.run_cached(handle, call.inputs, call.prefix, flags=call.flags,
                                         tuple_form=call.tuple_form)
        else:
            out = run(model_cache, handle, call.inputs, flags=call.flags, tuple_form=call.tuple_form)
    except Exception as err:  # a valid call that raised (a skip is no Exception): the failure names the features
        check.fail("architecture.feed_forward", f"{row.id}: the call raised {type(err).__name__}: {err}")
    fields = _returned(out, row, call, check)
    try:
        for name, clause, want in _expected(row, cfg, weights, call):
            got = fields.get(name)
            check.that(got is not None, clause=clause, message=f"the call returned no {name}")
            for got_piece, want_piece in _pieces(got, want):
                if name == "past_key_values" and call.prefix and "attention_mask" in call.inputs:
                    # a padded query that sees only padded keys spreads its attention over every key it is
                    # given (decision.mask_value), so the prefix call's padded positions are not the full
                    # pass's: the cache is compared at the real positions (B,N,S,D) only
                    real = call.inputs["attention_mask"][:, None, :, None]
                    got_piece, want_piece = np.asarray(got_piece) * real, want_piece * real
                check.allclose(got_piece, want_piece, clause=clause, kind=REFERENCE_KIND, field=name)
    except ClauseFailure as err:
        check.fail(err.clause, f"{row.id}: {err}", err.field)
