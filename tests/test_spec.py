"""The spec itself: schemas really constrain the data, symbols and ids are consistent, every documented
class/argument is present, cross-references resolve, and the shape/condition/default evaluators work."""
from __future__ import annotations

import builtins
import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import yaml

from spec import eval_condition, eval_dim, eval_shape, load_spec, parse_shape, shape_symbols
from spec.clauses import iter_clauses
from spec.defaults import default_value, parse_default
from spec.loader import DATA_DIR, SpecError, read_data, schema_for, validation_errors

S = load_spec()
API_NOTES = [Path(__file__).resolve().parents[1] / "docs" / "api-notes.md"]


# ---------------------------------------------------------------- schemas
@pytest.mark.parametrize("stem", sorted(p.stem for p in DATA_DIR.glob("*.yaml")))
def test_every_data_file_has_a_schema_and_matches_it(stem):
    schema = schema_for(stem)
    assert schema is not None, f"spec/schema/{stem}.schema.json is missing"
    assert validation_errors(read_data(stem), schema) == []


def _drop_first_error_id(d):
    del d["errors"][0]["exception"]


BREAKAGES = {
    "classes": lambda d: d["classes"]["TFElectraModel"].__setitem__("framework", "torch"),
    "errors": _drop_first_error_id,
    "tolerances": lambda d: d["rules"][0].__setitem__("atol", -1.0),
    "decisions": lambda d: d["decisions"][0]["observed"].pop("pt"),
    "meta": lambda d: d.__setitem__("spec_version", "1.0"),
    "losses": lambda d: d["losses"]["masked_lm"].pop("reduction"),
    "behaviour": lambda d: d["clauses"][0].__setitem__("family", "vibes"),
    "files": lambda d: d["files"]["tf_h5"].__setitem__("reads", ["torch"]),
    "outputs": lambda d: d["classes"]["TFMaskedLMOutput"]["fields"][0].__setitem__("present_when", ""),
    "config": lambda d: d["fields"][0].__setitem__("type", "integer"),
}


@pytest.mark.parametrize("stem", sorted(BREAKAGES))
def test_a_broken_copy_does_not_load(stem, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(DATA_DIR, data_dir)
    raw = yaml.safe_load((data_dir / f"{stem}.yaml").read_text(encoding="utf-8"))
    BREAKAGES[stem](raw)
    (data_dir / f"{stem}.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(SpecError, match=f"{stem}.yaml does not match its schema"):
        load_spec(str(data_dir))


def test_a_dangling_reference_does_not_load(tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(DATA_DIR, data_dir)
    raw = yaml.safe_load((data_dir / "decisions.yaml").read_text(encoding="utf-8"))
    raw["decisions"][0]["affects"].append("loss.no_such_head")
    (data_dir / "decisions.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(SpecError, match="affects unknown clause loss.no_such_head"):
        load_spec(str(data_dir))


def test_an_unbroken_copy_loads_to_the_same_clauses(tmp_path):
    shutil.copytree(DATA_DIR, tmp_path / "data")
    assert list(load_spec(str(tmp_path / "data")).clauses()) == list(S.clauses())


# ---------------------------------------------------------------- symbols and ids
def _all_shapes():
    for c in S.classes.values():
        for p in c.constructor + c.call:
            for shape in ((p.shape,) if p.shape is not None else ()) + p.alt_shapes:
                yield p.id, shape
            if p.tuple is not None:
                yield p.id, p.tuple
    for oc in S.outputs.values():
        for f in oc.fields:
            if f.shape is not None:
                yield f.id, f.shape
            if f.tuple is not None:
                yield f.id, f.tuple
    for h in S.losses.heads.values():
        yield h.id, h.shape
    for module, entries in S.raw("params")["modules"].items():
        for p in entries:
            for dim in p["shape"]:
                yield f"params.{module}.{p['name']}", str(dim)
    for sym in S.meta.derived:
        yield f"meta.derived.{sym.name}", sym.expr


def test_every_shape_symbol_is_declared():
    known = set(S.config.field_names) | S.meta.dynamic_names | S.meta.derived_names
    unknown = {(where, sym) for where, shape in _all_shapes() for sym in shape_symbols(shape) - known}
    assert unknown == set()


def test_clause_ids_are_unique_and_families_known():
    ids = [c.id for c in iter_clauses(S)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert dupes == []
    assert {c.family for c in S.clauses().values()} <= set(S.meta.families)
    assert list(S.clauses()) == ids


def test_clauses_cover_every_family_the_issue_names():
    families = {c.family for c in S.clauses().values()}
    for family in ("signatures", "outputs", "defaults", "invariances", "semantics", "losses", "numerics",
                   "persistence", "dtypes", "errors", "config"):
        assert family in families


def test_per_class_clause_ids_follow_the_naming_scheme():
    c = S.clauses()
    assert c["FlaxElectraModel.call.default.token_type_ids"].family == "defaults"
    assert c["TFElectraForQuestionAnswering.call.start_positions"].family == "signatures"
    assert c["TFElectraForMaskedLM.output.loss"].family == "outputs"
    assert c["TFMaskedLMOutput.field.logits"].source == "outputs.yaml"
    assert c["loss.question_answering.clamp"].family == "losses"
    assert "FlaxElectraModel.call.default.input_ids" not in c  # required arguments have no default clause


# ---------------------------------------------------------------- classes vs api-notes.md
def _api_notes() -> str:
    for path in API_NOTES:
        if path.exists():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(f"api-notes.md not found at {[str(p) for p in API_NOTES]}")


def _arg_list(text: str, marker: str) -> list[str]:
    """Argument names of the first `name(...)` after marker: top-level commas, defaults dropped."""
    rest, depth, parts, cur = text.split(marker, 1)[1], 1, [], ""
    for ch in rest:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            break
        if ch == "," and depth == 1:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    names = [re.sub(r"[=<].*$", "", a.replace("\n", " ").strip()) for a in parts + [cur]]
    return [n for n in names if re.fullmatch(r"[a-z_]+", n)]


def test_every_documented_class_is_specified():
    documented = set(re.findall(r"\b((?:TF|Flax)Electra\w+)", _api_notes()))
    assert documented - set(S.classes) == set()
    assert {c.name for c in S.classes.values() if not c.extension} >= documented
    assert len([c for c in S.classes.values() if not c.extension]) == 15


def test_every_documented_call_argument_is_specified():
    notes = _api_notes()
    tf_args = _arg_list(notes, "TF: Keras model subclass; call(")
    flax_args = _arg_list(notes, "__call__(")
    assert {"input_ids", "training", "return_dict"} <= set(tf_args)
    assert {"input_ids", "dropout_rng", "past_key_values"} <= set(flax_args)
    for c in S.classes_for("tf"):
        assert set(tf_args) - set(c.call_names) == set(), c.name
        assert set(c.labels) <= set(c.call_names)
    for c in S.classes_for("flax"):
        assert set(flax_args) - set(c.call_names) == set(), c.name


def test_flax_constructor_arguments_match_the_notes():
    init = _arg_list(_api_notes(), "Flax: Cls(")
    for c in S.classes_for("flax"):
        assert [p.name for p in c.constructor if p.kind != "var_keyword"] == init


def test_every_vocabulary_argument_is_used():
    used = set()

    def walk(entries):
        for e in entries:
            if isinstance(e, tuple) and e and isinstance(e[0], (tuple, dict)) or (isinstance(e, tuple) and not e):
                walk(e)
            elif isinstance(e, tuple):
                used.add(e[0])
            else:
                used.add(e.get("from", e["name"]))

    for sig in S.raw("classes")["signatures"].values():
        walk(sig)
    for c in S.raw("classes")["classes"].values():
        walk(c["init"]), walk(c["call"])
    assert set(S.raw("classes")["arguments"]) - used == set()


def test_signature_shapes_and_kinds():
    mc = S.classes["TFElectraForMultipleChoice"]
    assert mc.call_arg("input_ids").shape == "batch choices seq"
    assert mc.call_arg("inputs_embeds").shape == "batch choices seq embedding_size"
    tf = S.classes["TFElectraModel"]
    assert tf.call[-1].name == "training" and tf.call[0].name == "input_ids"
    assert [p.position for p in tf.call] == list(range(len(tf.call)))
    assert tf.call_arg("head_mask").alt_shapes == ("num_attention_heads",)
    assert S.classes["FlaxElectraModel"].call_arg("input_ids").required
    assert S.classes["TFElectraModel"].constructor[-1].kind == "var_keyword"
    assert [c.name for c in S.classes_for("tf")][-1] == "TFElectraForCausalLM"  # extension last


# ---------------------------------------------------------------- cross references
def test_referenced_output_classes_and_losses_exist():
    for c in S.classes.values():
        assert c.output_class in S.outputs, c.name
        assert c.output_class.startswith("TF" if c.framework == "tf" else "Flax")
        if c.loss is not None:
            assert c.name in S.losses.heads[c.loss].classes
    for h in S.losses.heads.values():
        assert set(h.classes) <= set(S.classes)


def test_params_describe_exactly_the_spec_classes_and_their_references():
    params = S.raw("params")["classes"]
    ours = {name for name, c in params.items() if c["framework"] in ("tf", "flax")}
    assert ours == set(S.classes)
    for c in S.classes.values():
        assert params[c.name]["framework"] == c.framework
        assert params[c.name]["base_prefixed"] == (c.param_prefix == "electra.")
        assert params[c.reference]["framework"] == "pt"


def test_decisions_errors_and_prose_reference_existing_ids():
    ids = set(S.clauses())
    for d in S.decisions.values():
        assert set(d.affects) - ids == set(), d.id
    for e in S.errors.values():
        assert set(e.refs) - ids == set(), e.id
        assert e.exception in S.exceptions or isinstance(getattr(builtins, e.exception, None), type), e.id
        assert e.classes is None or set(e.classes) <= set(S.classes)
    mentioned = set()
    for stem in ("classes", "errors", "losses", "behaviour", "files", "decisions", "tolerances"):
        text = (DATA_DIR / f"{stem}.yaml").read_text(encoding="utf-8")
        mentioned |= set(re.findall(r"\b((?:decision|error|loss|behaviour|files|architecture|activation)\.[a-z_]+(?:\.[a-z0-9_]+)*)\b", text))
    mentioned = {m for m in mentioned if not m.startswith("loss.<")}
    assert len(mentioned) > 20  # the scan finds the cross references
    file_names = {p.name for p in DATA_DIR.glob("*.yaml")} | {"architecture.md"}
    assert {m for m in mentioned if m not in ids and m not in file_names} == set()


def test_every_activation_name_is_defined():
    names = set(S.config.field("hidden_act").choices) | set(S.config.field("summary_activation").choices)
    assert names - set(S.behaviour.activations) == set()


def test_every_output_condition_uses_known_names():
    from spec.shapes import condition_names

    flags = {"output_attentions", "output_hidden_states", "use_cache"}
    for oc in S.outputs.values():
        for f in oc.fields:
            used_flags, fields, args = condition_names(f.present_when)
            assert used_flags <= flags, f.id
            assert fields <= set(S.config.field_names), f.id
            assert all(any(a in c.call_names for c in S.classes.values()) for a in args), f.id


def test_default_rules_parse():
    for c in S.classes.values():
        for p in c.constructor + c.call:
            parse_default(p.default)
    with pytest.raises(ValueError):
        parse_default("ones_like(attention_mask)")
    with pytest.raises(ValueError):
        parse_default("whatever")


def test_spec_objects_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.classes["TFElectraModel"].framework = "flax"
    with pytest.raises(TypeError):
        S.classes["x"] = None
    with pytest.raises(TypeError):
        S.raw("meta")["spec_version"] = "2.0.0"
    assert load_spec() is S


# ---------------------------------------------------------------- evaluators
def test_parse_shape():
    assert parse_shape("batch*choices seq hidden_size") == ("batch*choices", "seq", "hidden_size")
    assert parse_shape("") == ()
    with pytest.raises(ValueError):
        parse_shape("batch seq**2")
    with pytest.raises(ValueError):
        parse_shape("batch f(seq)")


def test_eval_shape():
    env = {"batch": 2, "choices": 3, "seq": 5, "past_seq": 4, "hidden_size": 16, "num_attention_heads": 4,
           "num_hidden_layers": 2, "max_position_embeddings": 8}
    assert eval_shape("batch*choices seq hidden_size", env) == (6, 5, 16)
    assert eval_shape("2 batch num_attention_heads past_seq+seq head_dim", env) == (2, 2, 4, 9, 4)
    assert eval_shape("num_relative_distances head_dim", env) == (15, 4)
    assert eval_shape("", env) == ()
    assert eval_dim("num_hidden_layers+1", env) == 3
    with pytest.raises(KeyError, match="enc_seq"):
        eval_shape("batch enc_seq", env)
    with pytest.raises(ValueError, match="16 / 3 is not an integer"):  # derived symbols divide exactly
        eval_shape("head_dim", {**env, "num_attention_heads": 3})


def test_eval_condition():
    cfg = {"add_cross_attention": True, "is_decoder": False}
    cond = "output_attentions and config.add_cross_attention and given('encoder_hidden_states')"
    assert eval_condition(cond, {"output_attentions": True}, {"encoder_hidden_states"}, cfg) is True
    assert eval_condition(cond, {"output_attentions": True}, set(), cfg) is False
    assert eval_condition(cond, {"output_attentions": False}, {"encoder_hidden_states"}, cfg) is False
    assert eval_condition("use_cache and config.is_decoder", {"use_cache": True}, (), cfg) is False
    assert eval_condition("always", {}, (), cfg) is True
    assert eval_condition("given('labels')", {}, lambda a: a == "labels", cfg) is True
    with pytest.raises(KeyError):
        eval_condition("output_attentions", {}, (), cfg)
    with pytest.raises(ValueError):
        eval_condition("__import__('os')", {}, (), cfg)


def test_default_values():
    env = {"batch": 2, "seq": 3, "past_seq": 2, "enc_seq": 4}
    assert default_value("arange(past_seq, past_seq+seq)", env, input_shape=(2, 3)).tolist() == [[2, 3, 4]] * 2
    assert default_value("ones(batch past_seq+seq)", env).shape == (2, 5)
    assert default_value("zeros_like(input_ids)", env, input_shape=(2, 3)).sum() == 0
    assert default_value("config.return_dict", env, config={"return_dict": False}) is False
    assert default_value("none", env) is None


# ---------------------------------------------------------------- tolerances and errors
def test_tolerance_lookup_prefers_the_most_specific_rule():
    general = S.tolerance("golden", "float32", "cpu")
    compiled = S.tolerance("compiled_vs_eager", "float32", "cpu")
    assert compiled.atol < general.atol
    assert S.tolerance("golden", "bfloat16", "cpu", "loss") != S.tolerance("golden", "bfloat16", "cpu")
    assert S.tolerance("golden", "bfloat16", "gpu").atol > general.atol
    with pytest.raises(ValueError, match="float64x"):
        S.tolerance("golden", "float64x", "cpu")
    ok, err = general.check([1.0, 2.0], [1.0, 2.0 + general.atol / 2])
    assert ok and err > 0
    assert not general.check([1.0], [float("nan")])[0]


def test_every_kind_dtype_device_has_a_tolerance():
    t = S.tolerances
    for kind in t.kinds:
        for dtype in t.dtypes:
            for device in t.devices:
                tol = S.tolerance(kind, dtype, device)
                assert 0 < tol.atol <= 1 and 0 <= tol.rtol <= 1


def test_error_clauses():
    e = S.errors["error.input_ids.out_of_range"]
    assert e.applies_to("FlaxElectraModel", "flax")
    assert e.expected_fragments(value=40, vocab_size=32) == ("input_ids", "40", "32")
    assert e.accepts(ValueError("x")) and not e.accepts(TypeError("x"))
    tf_only = S.errors["error.inputs.both_ids_and_embeds"]
    assert not tf_only.applies_to("FlaxElectraModel", "flax")
    assert S.errors["error.checkpoint.corrupt"].exception in S.exceptions
    assert tf_only in S.errors_for("TFElectraModel") and tf_only not in S.errors_for("FlaxElectraModel")
