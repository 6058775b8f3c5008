"""Parameters (params.yaml): every class has exactly the spec's parameters with the spec's shapes
(params.<module>.<name>, params.class.<Class>), the tied output projection reads the word-embedding
table (params.tied.*), and saved files name their weights by the naming rules (params.naming.*).

Models use the golden cases' configs (built by the numerics family anyway): together they switch
every ``when`` of params.yaml both ways except cross-attention, which one extra decoder config adds.
Shape keys: B batch, S sequence, V vocab_size, E embedding_size.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from conformance.golden_data import load_cases
from conformance.tests._golden import call_arguments
from conformance.tests._helpers import SELF_KIND, error_exceptions, error_fragments
from conformance.tests._params import (class_modules, expected_params, file_shape, flax_path, kind_of, leaf_rule,
                                       module_of, module_prefix, naming, params_spec, tf_name, tied_param)
from spec import load_spec

CASES = load_cases()
TIED = f"params.tied.{params_spec()['tied']['name']}"


def configs_for(class_name: str) -> list[tuple[str, dict]]:
    """(label, config) of every golden case of the class; the base class also gets the decoder case with
    cross-attention."""
    framework = load_spec().classes[class_name].framework
    found = [(c.id, c.config()) for c in CASES if c.class_for(framework) == class_name]
    if not params_spec()["classes"][class_name]["base_prefixed"]:
        decoder = next(c for c in CASES if c.class_for(framework) == class_name and c.config().get("is_decoder"))
        found.append(("cross_attention", {**decoder.config(), "add_cross_attention": True}))
    return found


def check_parameters(check, class_name: str, actual: dict, config: dict, label: str) -> None:
    """``actual`` (canonical name -> array) has exactly the expected names and shapes."""
    expected = expected_params(class_name, config)
    class_clause = f"params.class.{class_name}"
    modules = class_modules(class_name)
    foreign = sorted(n for n in actual if n not in expected and module_of(n) not in (None, *modules))
    check.that(not foreign, clause=class_clause,
               message=f"[{label}] parameters of modules {class_name} does not have ({modules}): {foreign}")
    for module in modules:
        names = [e.name for e in expected.values() if e.module == module]
        check.that(not names or any(n in actual for n in names), clause=class_clause,
                   message=f"[{label}] {class_name} has none of the {module} parameters (e.g. {names[:2]})")
    for name, e in expected.items():
        check.that(name in actual, clause=e.clause, message=f"[{label}] {class_name} lacks {name} {e.shape}")
        check.equal(tuple(np.shape(actual[name])), e.shape, clause=e.clause, what=f"[{label}] shape of {name}")
    tied = tied_param(class_name, config)
    if tied is not None:
        check.that(tied not in actual, clause=TIED,
                   message=f"[{label}] {tied} is a separate parameter, but the word-embedding table is shared")
    for name in sorted(set(actual) - set(expected) - {tied}):
        module = module_of(name)
        entry = next((p for p in params_spec()["modules"].get(module, ()) if _matches(p["name"], name, class_name,
                                                                                     module)), None)
        clause = f"params.{module}.{entry['name']}" if entry else class_clause
        check.fail(clause, f"[{label}] {class_name} has a parameter the spec does not list for this config: {name} "
                           f"{np.shape(actual[name])}")


def _matches(template: str, name: str, class_name: str, module: str) -> bool:
    import re

    pattern = re.escape(module_prefix(class_name, module) + template).replace(r"\{i\}", r"\d+")
    return re.fullmatch(pattern, name) is not None


def test_parameter_names_and_shapes(check, adapter, caps, device, class_name, model_cache):
    check.clause(f"params.class.{class_name}")
    configs = [(label, c) for label, c in configs_for(class_name) if caps.supports_config(class_name, c).ok]
    if not configs:
        caps.skip(*sorted({caps.supports_config(class_name, c).reason for _, c in configs_for(class_name)}))
    for label, config in configs:  # those the implementation supports
        handle = model_cache.get(class_name, config)
        check_parameters(check, class_name, adapter.get_weights(handle), handle.config, label)


def test_reference_checkpoints_hold_the_spec_parameters(shared_check):
    """The PyTorch reference's golden checkpoints (model.safetensors, written by transformers' PT classes)
    store exactly the parameters params.yaml gives their classes: the spec's facts about the reference,
    checked once and reported under "shared" (no implementation is exercised)."""
    for case in CASES:
        shared_check.clause(f"params.class.{case.reference_class}")
        _, stored = _safetensors_keys(case.directory / params_spec()["files"]["safetensors"])
        check_parameters(shared_check, case.reference_class, {k: np.zeros(v) for k, v in stored.items()},
                         case.config(), case.id)


def _lm_cases(framework: str):
    heads = {c for c, e in params_spec()["classes"].items() if "generator_lm_head" in e["heads"]}
    return [c for c in CASES if c.class_for(framework) in heads]


def test_tied_output_projection_reads_the_word_embeddings(check, adapter, caps, device, model_cache):
    """Changing the word-embedding rows of tokens absent from the input changes exactly those logit
    columns when the projection is tied (and none when the config unties it and the framework stores
    its own projection)."""
    check.clause(TIED)
    cases = [c for c in _lm_cases(adapter.framework) if c.class_for(adapter.framework) in caps.classes]
    if not cases:
        pytest.skip(f"{adapter.name} implements no class with a generator_lm_head")
    tolerance = load_spec().tolerance(SELF_KIND, "float32", device)
    for case in cases:
        class_name = case.class_for(adapter.framework)
        config = case.config()
        inputs, flags = call_arguments(case, class_name, caps)  # the golden call: compiled code is reused
        inputs = {k: v for k, v in inputs.items() if k != "head_mask"}  # not needed; transformers' TF lacks it
        base = model_cache.get(class_name, config)
        weights = adapter.get_weights(base)
        before = np.asarray(model_cache.run(base, inputs, flags=flags).fields["logits"], np.float64)
        table_name = module_prefix(class_name, "base") + "embeddings.word_embeddings.weight"
        unused = np.setdiff1d(np.arange(weights[table_name].shape[0]), np.asarray(inputs["input_ids"]))
        changed = dict(weights)
        table = weights[table_name].copy()
        table[unused] = np.random.default_rng(0).normal(size=(len(unused), table.shape[1])).astype(table.dtype)
        changed[table_name] = table
        after = np.asarray(model_cache.run(model_cache.get(class_name, config, weights=changed), inputs, flags=flags)
                           .fields["logits"], np.float64)
        model_cache.get(class_name, config)  # the initial weights again
        used = np.setdiff1d(np.arange(table.shape[0]), unused)
        check.allclose(after[..., used], before[..., used], clause=TIED, kind=SELF_KIND, field="logits")
        moved = float(np.max(np.abs(after[..., unused] - before[..., unused])))
        allowed = tolerance.atol + tolerance.rtol * float(np.max(np.abs(before[..., unused])))
        tied = tied_param(class_name, config) is not None
        check.that((moved > allowed) == tied, clause=TIED,
                   message=f"{case.id}: new word-embedding rows moved their logit columns by {moved:.3g} "
                           f"(tolerance {allowed:.3g}); the projection is {'tied' if tied else 'untied'}")


# -- names in saved files (params.naming) ----------------------------------------------------------
def _split_leaf(key: str) -> tuple[str, str]:
    sep = "/" if "/" in key else "."
    stem, _, leaf = key.rpartition(sep)
    return stem, leaf.split(":")[0]


def _leaf_clause(canonical: str, framework: str, actual_leaf: str) -> str:
    """The naming rule a wrong leaf name breaks: the module's kind (module_kinds / default_kind) when
    the leaf is another kind's, else the leaf table."""
    parts = canonical.split(".")
    for kind, rules in naming()["leaves"].items():
        if kind != kind_of(canonical) and rules.get(parts[-1], {}).get(framework) == actual_leaf:
            listed = parts[-2] in naming()["module_kinds"]
            return "params.naming.module_kinds" if listed else "params.naming.default_kind"
    return "params.naming.leaves"


def _tf_variants(key: str) -> dict[str, str]:
    """Rule -> the TF name ``key`` would be if that one rule were broken (what an implementation that
    ignores it writes)."""
    rules = naming()
    scope, _, rest = key.partition("/")
    bare = key[:-len(rules["tf_suffix"])]
    index = rules["tf_layer_index"].replace("{i}", "")
    return {"params.naming.tf_suffix": bare,
            "params.naming.tf_model_scopes": rest,
            "params.naming.tf_base_scope": key.replace(f"/{rules['tf_base_scope']}/", "/", 1),
            "params.naming.tf_layer_index": key.replace(f"/{index}", "/layer/")}


def _blame(e, key: str, stored: dict, wanted: dict, framework: str) -> tuple[str, str]:
    """(clause, what was found instead) for an expected key missing from a file."""
    if framework == "tf":
        for clause, variant in _tf_variants(key).items():
            if variant != key and variant in stored:
                return clause, variant
        other_scope = [k for k in stored if k.partition("/")[2] == key.partition("/")[2]]
        if other_scope:
            return "params.naming.tf_model_scopes", other_scope[0]
    stem = _split_leaf(key)[0]
    near = sorted(k for k in stored if _split_leaf(k)[0] == stem and k not in wanted)
    if near and framework != "pt":
        return _leaf_clause(e.name, framework, _split_leaf(near[0])[1]), near[0]
    return e.clause, ", ".join(near) or "nothing similar"


def check_names(check, expected: dict, stored: dict, framework: str, name_of, what: str) -> None:
    """``stored`` (file key -> shape) holds exactly ``name_of(canonical)`` for every expected parameter,
    in the framework's layout (framework 'pt': canonical names and layout)."""
    wanted = {name_of(n): e for n, e in expected.items()}
    for key, e in wanted.items():
        if key not in stored:
            clause, found = _blame(e, key, stored, wanted, framework)
            check.fail(clause, f"{what}: no {key!r} for {e.name}; found {found}")
        transposed = framework != "pt" and bool(leaf_rule(e.name).get("transpose"))
        shape = file_shape(e.name, e.shape, framework) if framework != "pt" else e.shape
        check.equal(tuple(stored[key]), shape, clause="params.naming.leaves" if transposed else e.clause,
                    what=f"{what}: shape of {key}")
    extra = sorted(set(stored) - set(wanted))
    check.that(not extra, clause="params.naming.leaves", message=f"{what}: keys that name no spec parameter: {extra}")


def _safetensors_keys(path) -> tuple[str, dict]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return (f.metadata() or {}).get("format", ""), {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def _msgpack_keys(path) -> dict:
    """Tree path joined with '/' -> shape."""
    from flax.serialization import msgpack_restore

    def flat(tree, prefix=()):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from flat(value, (*prefix, str(key)))
            else:
                yield "/".join((*prefix, str(key))), tuple(np.shape(value))

    return dict(flat(msgpack_restore(path.read_bytes())))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_h5(check, path, class_name: str, expected: dict) -> None:
    """tf_model.h5: root attributes, one group per top-level layer listing its weights' TF names
    (plus the shared ones of h5_layer_shares), datasets at <layer>/<TF name>."""
    import h5py

    rules = naming()
    scope = rules["tf_model_scopes"][class_name]
    with h5py.File(path, "r") as f:
        for key, pattern in rules["h5_root_attr_patterns"].items():
            value = _text(f.attrs.get(key))
            check.that(re.fullmatch(pattern, value or "") is not None, clause="params.naming.h5_root_attrs",
                       message=f"h5 root attribute {key}: got {value!r}, expected a value matching {pattern!r}")
        layers = [_text(x) for x in f.attrs.get("layer_names", [])]
        stored, listed = {}, {}
        for layer in layers:
            listed[layer] = [_text(x) for x in f[layer].attrs.get("weight_names", [])]
            for n in listed[layer]:
                check.that(f"{layer}/{n}" in f, clause="params.naming.h5_root_attrs",
                           message=f"h5 group {layer} lists {n} but has no dataset {layer}/{n}")
                stored[n] = tuple(f[f"{layer}/{n}"].shape)
    # the model scope is the Keras name of the model object: Keras numbers the second and later
    # models of a class in one process (<scope>_<n>), and readers skip that first component
    found = {n.split("/")[0] for n in stored}
    if len(found) == 1 and re.fullmatch(rf"{re.escape(scope)}(_\d+)?", next(iter(found))):
        scope = found.pop()
    names = {e.name: tf_name(e.name, scope) for e in expected.values()}
    check_names(check, expected, stored, "tf", lambda n: names[n], "tf_model.h5")
    tops = {n.split("/")[1] for n in names.values()}
    check.that(tops <= set(layers), clause="params.naming.h5_root_attrs",
               message=f"h5 layer_names {layers} lacks top-level layers holding weights: {sorted(tops - set(layers))}")
    for layer, weights in listed.items():
        if layer not in tops:  # a top-level layer without weights (Keras lists those too)
            check.equal(weights, [], clause="params.naming.h5_root_attrs", what=f"weight_names of h5 layer {layer}")
            continue
        shares = rules["h5_layer_shares"].get(layer, ())
        own = {n for n in names.values() if n.split("/")[1] == layer}
        shared = {n for n in names.values() if any(n.split("/", 1)[1].startswith(s) for s in shares)}
        check.equal(sorted(set(weights)), sorted(own | shared),
                    clause="params.naming.h5_layer_shares" if shared else "params.naming.h5_root_attrs",
                    what=f"weight_names of h5 layer {layer}")


def test_saved_weight_names(check, adapter, caps, device, class_name, model_cache, tmp_path):
    """model.safetensors and the framework's own file name the weights by the naming rules."""
    caps.skip_unless("file:safetensors", "file:h5" if adapter.framework == "tf" else "file:msgpack")
    _, config = configs_for(class_name)[0]
    handle = model_cache.get(class_name, config)
    expected = expected_params(class_name, handle.config)
    files = params_spec()["files"]
    check.clause(*(f"params.naming.{rule}" for rule in ("leaves", "module_kinds", "default_kind")))
    adapter.save(handle, str(tmp_path / "safe"), formats=("safetensors",))
    fmt, stored = _safetensors_keys(tmp_path / "safe" / files["safetensors"])
    if fmt == "tf":  # transformers' own TF safetensors (files.safetensors): TF names without the model scope
        check_names(check, expected, stored, "tf", lambda n: tf_name(n, None), "model.safetensors (tf)")
    elif fmt == "flax":
        check_names(check, expected, stored, "flax", lambda n: ".".join(flax_path(n)), "model.safetensors (flax)")
    else:
        check_names(check, expected, stored, "pt", lambda n: n, f"model.safetensors ({fmt or 'no format'})")
    if adapter.framework == "tf":
        check.clause(*(f"params.naming.{rule}" for rule in ("tf_suffix", "tf_model_scopes", "tf_base_scope",
                                                             "tf_layer_index", "h5_root_attrs", "h5_layer_shares")))
        adapter.save(handle, str(tmp_path / "native"), formats=("h5",))
        check_h5(check, tmp_path / "native" / files["h5"], class_name, expected)
    else:
        adapter.save(handle, str(tmp_path / "native"), formats=("msgpack",))
        stored = _msgpack_keys(tmp_path / "native" / files["msgpack"])
        check_names(check, expected, stored, "flax", lambda n: "/".join(flax_path(n)), "flax_model.msgpack")


def _tied_lm_case(adapter, caps, clause: str):
    """A golden case of a TF class with a tied generator_lm_head that the adapter implements."""
    if adapter.framework != "tf":
        pytest.skip(f"{clause} binds TF classes only")
    caps.skip_unless("api:native")  # resize_token_embeddings is called on the model object itself
    case = next((c for c in _lm_cases("tf") if c.class_for("tf") in caps.classes
                 and tied_param(c.class_for("tf"), c.config())), None)
    if case is None:
        pytest.skip(f"{adapter.name} implements no TF class with a tied generator_lm_head")
    return case


def test_tf_resize_token_embeddings(check, adapter, caps, device, model_cache):
    """resize_token_embeddings(n), growing then shrinking: the first min(n, V) rows of the word-embedding
    table and of the MLM bias are kept, config.vocab_size is n, the head stays tied and the logits are
    n wide, unchanged for the kept tokens."""
    clause = "behaviour.tf.resize_token_embeddings"
    case = _tied_lm_case(adapter, caps, clause)
    class_name, config = case.class_for("tf"), case.config()
    check.clause(clause)
    handle = model_cache.build(class_name, config)  # resized below: not the shared cached model
    vocab = config["vocab_size"]
    inputs = {k: v for k, v in call_arguments(case, class_name, caps)[0].items() if k not in case.labels()}
    inputs["input_ids"] = np.asarray(inputs["input_ids"]) % (vocab // 2)  # valid for every size below
    table, bias = (module_prefix(class_name, "base") + "embeddings.word_embeddings.weight",
                   "generator_lm_head.bias")
    before, old_vocab = adapter.get_weights(handle), vocab
    logits_before = np.asarray(adapter.run(handle, inputs).fields["logits"])
    for size in (vocab + 4, vocab // 2):
        handle.native.resize_token_embeddings(size)
        after = adapter.get_weights(handle)
        keep = min(size, old_vocab)
        check.equal(handle.native.config.vocab_size, size, clause=clause, what="config.vocab_size after resizing")
        for name in (table, bias):
            check.equal(after[name].shape[0], size, clause=clause, what=f"rows of {name} after resizing to {size}")
            check.equal(after[name][:keep], before[name][:keep], clause=clause, what=f"kept rows of {name}")
        check.that(tied_param(class_name, config) not in after, clause=clause,
                   message=f"resizing untied the output projection: {tied_param(class_name, config)} appeared")
        logits = np.asarray(adapter.run(handle, inputs).fields["logits"])
        check.equal(logits.shape[-1], size, clause=clause, what="logits width after resizing")
        check.allclose(logits[..., :min(size, vocab)], logits_before[..., :min(size, vocab)], clause=clause,
                       kind=SELF_KIND, field="logits")
        before, old_vocab = after, size


#: sizes resize_token_embeddings must refuse (error.resize.new_num_tokens), by edge: pad_token_id is set to 3
_PAD = 3
_BAD_SIZES = {"zero": 0, "negative": -1, "fractional": 9.5, "pad_token_id": _PAD}


@pytest.mark.parametrize("edge", list(_BAD_SIZES))
def test_tf_resize_refuses_a_size_that_cannot_hold_the_vocabulary(check, adapter, caps, model_cache, edge):
    """resize_token_embeddings(n) with n < 1, a fractional n, or n <= pad_token_id raises ValueError naming
    new_num_tokens and n, and changes nothing (weights and config.vocab_size); at the pad edge, one row
    more (n = pad_token_id + 1) is accepted."""
    clause = "error.resize.new_num_tokens"
    case = _tied_lm_case(adapter, caps, clause)
    class_name, config = case.class_for("tf"), dict(case.config(), pad_token_id=_PAD)
    error, size = load_spec().errors[clause], _BAD_SIZES[edge]
    handle = model_cache.build(class_name, config)  # resized below: not the shared cached model
    before = adapter.get_weights(handle)
    with check.raises(error_exceptions(error), clause=clause, words=error_fragments(error, {"value": size}), edge=edge):
        handle.native.resize_token_embeddings(size)
    after = adapter.get_weights(handle)
    check.equal(sorted(after), sorted(before), clause=clause, what="parameter names after the refused resize")
    for name, value in before.items():
        check.equal(after[name], value, clause=clause, what=f"{name} after the refused resize")
    check.equal(handle.native.config.vocab_size, config["vocab_size"], clause=clause,
                what="config.vocab_size after the refused resize")
    if edge == "pad_token_id":
        handle.native.resize_token_embeddings(_PAD + 1)
        check.equal(handle.native.config.vocab_size, _PAD + 1, clause=clause,
                    what="config.vocab_size after resizing to pad_token_id + 1 (keeps the padding row)")
