"""Family 8, persistence (files.yaml): save/load round trips in safetensors and the framework's own
format (files.roundtrip), the PyTorch reference's checkpoints and the other framework's
safetensors load (files.cross_framework_load), base <-> head checkpoints (files.head_from_base), and
mismatched shapes (files.load.mismatched, error.checkpoint.shape_mismatch), corrupt, incomplete and
foreign checkpoints (error.checkpoint.*), a save that fails (error.save.failure: a directory occupies
the weights file's name, which stops root too) and Flax's _do_init=False (behaviour.flax.do_init).

Models carry the golden weights (conformance/golden), so every parameter is non-trivial.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conformance.golden_data import GoldenCase, load_cases
from conformance.tests._helpers import SELF_KIND, error_exceptions, warnings_said
from conformance.tests._golden import (OTHER_MODELS, call_arguments, capabilities_of, class_under_test, compare_fields,
                                       expected_fields, golden_run, other_outputs, our_other_adapter, weights_of)
from electra_core.config import ElectraConfig
from spec import load_spec

ROUNDTRIP, CROSS_LOAD = "files.roundtrip", "files.cross_framework_load"
HEAD_FROM_BASE, MISMATCHED = "files.head_from_base", "files.load.mismatched"
SHAPE_ERROR = "error.checkpoint.shape_mismatch"
#: the framework's own weights format and its files.yaml entry, besides safetensors
NATIVE = {"tf": ("h5", "files.tf_h5", "tf_model.h5"), "flax": ("msgpack", "files.flax_msgpack", "flax_model.msgpack")}
SAFETENSORS = ("safetensors", "files.safetensors", "model.safetensors")


@pytest.fixture(autouse=True)
def _saves_and_loads(caps, request):
    """Every test here saves or loads the transformers layout: skipped for implementations without it."""
    if "adapter" in request.fixturenames:
        request.getfixturevalue("caps").skip_unless("file:safetensors")


def native_format(adapter, caps) -> tuple[str, str, str]:
    """(format, file clause, file name) of the framework's own checkpoint file; skips when the
    implementation does not write it."""
    entry = NATIVE[adapter.framework]
    caps.skip_unless(f"file:{entry[0]}")
    return entry
#: golden checkpoints loaded with from_pretrained: every head once, E != H with an untied LM head, the decoder
REFERENCE_CASES = ("abs_gelu.*", "proj_relkq_gelu_new_untied.ElectraForMaskedLM", "decoder.ElectraForCausalLM")

ALL = load_cases()


def case_for(class_name: str, case: str = "abs_gelu") -> GoldenCase:
    """The golden case of a config case whose reference class is the spec class's reference."""
    reference = load_spec().classes[class_name].reference
    found = [c for c in ALL if c.reference_class == reference]
    return next((c for c in found if c.case == case), found[0])


def outputs(adapter, caps, handle, case: GoldenCase, class_name: str) -> dict:
    inputs, flags = call_arguments(case, class_name, caps)
    return dict(adapter.run(handle, inputs, flags=flags).fields)


def spec_config_fields(config: dict) -> dict:
    """The config's values of the spec's ElectraConfig fields (bookkeeping keys such as
    architectures or transformers_version may differ between writers)."""
    values = ElectraConfig.from_dict(dict(config)).to_dict()
    return {f.name: values.get(f.name) for f in load_spec().config.fields}


def check_same_weights(check, actual: dict, expected: dict, *, clause: str) -> None:
    """Every expected parameter is present with exactly the same values."""
    missing = sorted(set(expected) - set(actual))
    check.that(not missing, clause=clause, message=f"parameters missing after loading: {missing}")
    for name, value in expected.items():
        check.equal(np.asarray(actual[name]), np.asarray(value), clause=clause, what=f"parameter {name}")


def check_same_outputs(check, actual: dict, expected: dict, *, clause: str) -> None:
    """Every tensor field (and tuple of tensors) of ``expected`` is in ``actual``, bit for bit."""
    for name, value in expected.items():
        items = value if isinstance(value, tuple) else (value,)
        if not all(isinstance(v, (np.ndarray, np.generic, float)) for v in items):
            continue  # an opaque container (a Flax cache)
        check.that(name in actual, clause=clause, message=f"output {name} is missing after reloading")
        got = actual[name] if isinstance(value, tuple) else (actual[name],)
        check.equal(len(got), len(items), clause=clause, what=f"number of {name} entries")
        for a, e in zip(got, items):
            check.equal(np.asarray(a), np.asarray(e), clause=clause, what=f"output {name} after reloading")


@pytest.mark.parametrize("fmt", ["safetensors", "native"])
def test_round_trip(check, adapter, caps, device, class_name, model_cache, tmp_path, fmt):
    fmt_name, file_clause, file_name = native_format(adapter, caps) if fmt == "native" else SAFETENSORS
    case = case_for(class_name)
    check.clause(ROUNDTRIP, file_clause)
    handle, before = golden_run(adapter, caps, device, model_cache, case, class_name)
    adapter.save(handle, str(tmp_path), formats=(fmt_name,))
    check.that((tmp_path / file_name).is_file(), clause=file_clause,
               message=f"save(formats=({fmt_name!r},)) wrote {sorted(p.name for p in tmp_path.iterdir())}")
    check.that((tmp_path / "config.json").is_file(), clause="files.save.config_first_class",
               message="save wrote no config.json")
    loaded = adapter.load(class_name, str(tmp_path))
    saved_config, loaded_config = spec_config_fields(handle.config), spec_config_fields(loaded.config)
    changed = {k: (v, loaded_config.get(k)) for k, v in saved_config.items() if loaded_config.get(k) != v}
    check.that(not changed, clause=ROUNDTRIP, message=f"config fields changed (saved, loaded): {changed}")
    check_same_weights(check, adapter.get_weights(loaded), adapter.get_weights(handle), clause=ROUNDTRIP)
    check_same_outputs(check, outputs(adapter, caps, loaded, case, class_name),
                       before, clause=ROUNDTRIP)


@pytest.mark.parametrize("golden", [c.id for c in ALL if c.id in REFERENCE_CASES or f"{c.case}.*" in REFERENCE_CASES])
def test_reference_checkpoint_loads(check, adapter, caps, device, golden):
    case = next(c for c in ALL if c.id == golden)
    class_name = class_under_test(adapter, caps, case, device)
    check.clause(CROSS_LOAD, SAFETENSORS[1], "files.config_json")
    handle = adapter.load(class_name, str(case.directory))
    check_same_weights(check, adapter.get_weights(handle), case.weights(), clause=CROSS_LOAD)
    compare_fields(check, class_name, outputs(adapter, caps, handle, case, class_name),
                   expected_fields(case, class_name, caps), kind="golden", clause=CROSS_LOAD)


def test_loads_safetensors_of_the_other_framework(check, adapter, caps, device, class_name, tmp_path):
    """What this project's other-framework implementation saves (model.safetensors) loads here, with
    equal weights and outputs within the cross_framework tolerance. Run against both of our
    implementations, this covers both directions."""
    case = case_for(class_name)
    other = our_other_adapter(adapter.framework)
    other_class = class_under_test(other, capabilities_of(other), case, device)
    check.clause(CROSS_LOAD, SAFETENSORS[1])
    theirs = other_outputs(other, device, case, other_class)
    source = OTHER_MODELS.get((other.name, device, case.id))
    if source is None:  # the other framework's outputs came from its own golden test in this session
        source = other.build(other_class, case.config(), seed=0, dtype="float32", device=device)
        other.load_weights(source, weights_of(case))
    other.save(source, str(tmp_path), formats=("safetensors",))
    loaded = adapter.load(class_name, str(tmp_path))
    check_same_weights(check, adapter.get_weights(loaded), other.get_weights(source), clause=CROSS_LOAD)
    mine = outputs(adapter, caps, loaded, case, class_name)
    compare_fields(check, class_name, mine, {k: v for k, v in theirs.items() if k in mine},
                   kind="cross_framework", clause=CROSS_LOAD)


def _base_class(framework: str) -> str:
    return next(c.name for c in load_spec().classes_for(framework) if not c.param_prefix)


def test_head_from_base(check, adapter, device, class_name):
    """A base checkpoint loads into a head (shared parameters equal, the head initialised) and a head
    checkpoint into the base class (its base parameters, prefix removed)."""
    spec_class = load_spec().classes[class_name]
    base_class = _base_class(adapter.framework)
    check.clause(HEAD_FROM_BASE)
    if spec_class.param_prefix:  # a head: the reference's base checkpoint of the same case loads into it
        case = case_for(class_name)
        base_case = next(c for c in ALL if c.case == case.case and c.reference_class == "ElectraModel")
        with warnings_said() as said:
            handle = adapter.load(class_name, str(base_case.directory))
        loaded = adapter.get_weights(handle)
        expected = {spec_class.param_prefix + k: v for k, v in base_case.weights().items()}
        check_same_weights(check, loaded, expected, clause=HEAD_FROM_BASE)
        heads = {k: v for k, v in loaded.items() if k not in expected}
        check.that(bool(heads), clause=HEAD_FROM_BASE, message=f"{class_name} loaded no head parameters")
        for name, value in heads.items():
            check.that(bool(np.all(np.isfinite(value))), clause=HEAD_FROM_BASE,
                       message=f"newly initialised {name} is not finite")
        _check_listed(check, said, heads, "newly initialised")
        source = case
    else:  # the base class: a head checkpoint loads into it
        source = case_for(next(c.name for c in load_spec().classes_for(adapter.framework) if c.param_prefix))
    prefix = load_spec().classes[source.class_for(adapter.framework)].param_prefix
    with warnings_said() as said:
        handle = adapter.load(base_class, str(source.directory))
    expected = {k[len(prefix):]: v for k, v in source.weights().items() if k.startswith(prefix)}
    check_same_weights(check, adapter.get_weights(handle), expected, clause=HEAD_FROM_BASE)
    _check_listed(check, said, [k for k in source.weights() if not k.startswith(prefix)], "unused")


def _check_listed(check, said: list[str], names, what: str) -> None:
    """Every module of ``names`` (canonical parameter names; a module is the name's first part, the one
    transformers' loaders list too) is named in a warning of the load (files.head_from_base)."""
    modules = sorted({name.split(".")[0] for name in names})
    unnamed = [m for m in modules if not any(m in text for text in said)]
    check.that(not unnamed, clause=HEAD_FROM_BASE,
               message=f"no warning of the load lists the {what} parameters of {unnamed}; warnings and log "
                       f"records: {' | '.join(said)[:400]!r}")


def precedence(framework: str) -> list[str]:
    """File names the framework's from_pretrained prefers, best first, read off the spec's rule
    files.precedence.<framework> (the files.yaml names in the order the rule text gives them)."""
    data = load_spec().raw("files")
    text = next(r["text"] for r in data["rules"] if r["id"] == f"precedence.{framework}")
    names = [f["name"] for f in data["files"].values() if framework in f["reads"] and f["name"] in text]
    return sorted(names, key=text.index)


def test_preferred_file_takes_precedence(check, adapter, caps, device, model_cache, tmp_path):
    """A directory with the framework's two readable weight files loads the preferred one
    (files.precedence.<framework>): it holds the golden weights, the other file those of a
    differently seeded model."""
    class_name = _base_class(adapter.framework)
    case = case_for(class_name)
    first, second = precedence(adapter.framework)[:2]
    fmt = {name: f for f, _, name in (SAFETENSORS, native_format(adapter, caps))}
    clause = f"files.precedence.{adapter.framework}"
    check.clause(clause)
    handle, _ = golden_run(adapter, caps, device, model_cache, case, class_name)
    adapter.save(handle, str(tmp_path / "preferred"), formats=(fmt[first],))
    adapter.save(model_cache.build(class_name, case.config(), seed=1), str(tmp_path / "both"), formats=(fmt[second],))
    shutil.copy(tmp_path / "preferred" / first, tmp_path / "both" / first)
    loaded = adapter.load(class_name, str(tmp_path / "both"))
    check_same_weights(check, adapter.get_weights(loaded), weights_of(case), clause=clause)


def _mismatched_copy(case: GoldenCase, tmp_path):
    """The case's reference checkpoint with config.json asking for a wider feed-forward layer: every
    intermediate/output dense parameter of the file has the wrong shape for the model."""
    target = tmp_path / "mismatched"
    shutil.copytree(case.directory, target)
    config = json.loads((target / "config.json").read_text())
    old = config["intermediate_size"]
    config["intermediate_size"] = old + 4
    (target / "config.json").write_text(json.dumps(config))
    return target, old, old + 4


def test_mismatched_checkpoint(check, adapter, device, tmp_path):
    class_name = _base_class(adapter.framework)
    case = case_for(class_name)
    directory, in_file, in_model = _mismatched_copy(case, tmp_path)
    with check.raises(ValueError, clause=SHAPE_ERROR, words=("intermediate", str(in_file), str(in_model)),
                      edge="intermediate_size larger in config.json than in the file"):
        adapter.load(class_name, str(directory))
    check.clause(MISMATCHED)
    try:
        handle = adapter.load(class_name, str(directory), ignore_mismatched_sizes=True)
    except Exception as err:  # noqa: BLE001 - the finding: the option must make the load succeed
        check.fail(MISMATCHED, f"load(ignore_mismatched_sizes=True) raised {type(err).__name__}: {err}")
    loaded, golden = adapter.get_weights(handle), case.weights()
    changed = sorted(k for k in golden if loaded[k].shape != golden[k].shape)
    check.that(bool(changed) and all("intermediate" in k or "output.dense" in k for k in changed),
               clause=MISMATCHED, message=f"parameters with new shapes: {changed}")
    check_same_weights(check, loaded, {k: v for k, v in golden.items() if k not in changed}, clause=MISMATCHED)
    for name in changed:
        check.that(in_model in loaded[name].shape and bool(np.all(np.isfinite(loaded[name]))), clause=MISMATCHED,
                   message=f"{name}: shape {loaded[name].shape} should use intermediate_size {in_model}")


# -- bad checkpoints and failed saves (errors.yaml, when: load / save) ------------------------------
def spec_exception(clause: str) -> type:
    """The Python exception type an error clause names (a spec exception such as CheckpointError is
    checked as the builtin it derives from, which is what callers can catch)."""
    return error_exceptions(load_spec().errors[clause])[0]


def _base_checkpoint(framework: str, tmp_path, name: str):
    """A copy of the reference's base-model checkpoint (config.json + model.safetensors) of the
    framework's base class, at tmp_path/name."""
    case = case_for(_base_class(framework))
    return shutil.copytree(case.directory, tmp_path / name)


def test_corrupt_checkpoint(check, adapter, caps, device, tmp_path):
    """A truncated model.safetensors and a framework file that is not of its format each raise
    error.checkpoint.corrupt naming the file."""
    clause = "error.checkpoint.corrupt"
    class_name = _base_class(adapter.framework)
    files = load_spec().raw("params")["files"]
    truncated = _base_checkpoint(adapter.framework, tmp_path, "truncated")
    data = (truncated / files["safetensors"]).read_bytes()
    (truncated / files["safetensors"]).write_bytes(data[:len(data) // 2])
    garbled = _base_checkpoint(adapter.framework, tmp_path, "garbled")
    (garbled / files["safetensors"]).unlink()
    native = native_format(adapter, caps)[2]
    (garbled / native).write_bytes(b"this is not a " + native.encode() + b" file\n" * 8)
    for directory, file_name, edge in ((truncated, files["safetensors"], "truncated safetensors"),
                                       (garbled, native, "native file of another format")):
        with check.raises(spec_exception(clause), clause=clause, words=(file_name,), edge=edge):
            adapter.load(class_name, str(directory))


def test_missing_checkpoint_file(check, adapter, device, tmp_path):
    """A directory without a weights file the framework reads, or without config.json, raises
    error.checkpoint.missing_file naming the location."""
    clause = "error.checkpoint.missing_file"
    class_name = _base_class(adapter.framework)
    files = load_spec().raw("params")["files"]
    no_weights = _base_checkpoint(adapter.framework, tmp_path, "no_weights_here")
    (no_weights / files["safetensors"]).unlink()
    no_config = _base_checkpoint(adapter.framework, tmp_path, "no_config_here")
    (no_config / files["config"]).unlink()
    for directory, edge in ((no_weights, "no weights file"), (no_config, "no config.json")):
        with check.raises(spec_exception(clause), clause=clause, words=(directory.name,), edge=edge):
            adapter.load(class_name, str(directory))
    # files.pytorch_bin: a directory holding only a pickled PyTorch file is not read; the error names
    # the directory and a format that is read
    only_bin = _base_checkpoint(adapter.framework, tmp_path, "only_pytorch_bin_here")
    (only_bin / files["safetensors"]).unlink()
    (only_bin / load_spec().raw("files")["files"]["pytorch_bin"]["name"]).write_bytes(b"not read")
    check.clause("files.pytorch_bin")
    with check.raises(spec_exception(clause), clause="files.pytorch_bin", words=(only_bin.name, files["safetensors"]),
                      edge="only a pickled PyTorch file"):
        adapter.load(class_name, str(only_bin))


#: config.json contents that are not a config: (file bytes, folder name, what the message must name)
BAD_CONFIG_FILES = ((b"", "config_empty", None), (b"[1, 2]", "config_list", None),
                    (b'{"vocab_size": ', "config_truncated", None), (b"\x00\xff\xfe", "config_binary", None),
                    (b'{"model_type": "electra", "validate": 3}', "config_shadowing_key", "validate"))


def test_bad_config_file_is_named(check, adapter, device, tmp_path):
    """error.config.file: a config.json that is empty, a list, truncated, binary, or holds a key that
    would shadow a method of the config raises naming the file (and the key)."""
    clause = "error.config.file"
    class_name = _base_class(adapter.framework)
    config_name = load_spec().raw("params")["files"]["config"]
    for content, name, key in BAD_CONFIG_FILES:
        folder = _base_checkpoint(adapter.framework, tmp_path, name)
        (folder / config_name).write_bytes(content)
        words = (config_name,) + ((key,) if key else ())
        with check.raises(spec_exception(clause), clause=clause, words=words, edge=name):
            adapter.load(class_name, str(folder))


def test_loader_keywords_are_honoured_or_refused(check, adapter, device, tmp_path):
    """error.loader.keyword: a keyword that is neither a hub option, a loader option nor a config field
    raises naming it (it never becomes a config attribute); error.loader.subfolder: a subfolder that is
    absolute or leaves the checkpoint folder is refused, naming it."""
    class_name = _base_class(adapter.framework)
    folder = _base_checkpoint(adapter.framework, tmp_path, "good")
    clause = "error.loader.keyword"
    with check.raises(spec_exception(clause), clause=clause, words=("not_a_loader_option",), edge="unknown keyword"):
        adapter.load(class_name, str(folder), not_a_loader_option=1)
    clause = "error.loader.subfolder"
    for subfolder, edge in (("../outside", "leaves the folder"), ("/etc", "absolute")):
        with check.raises(spec_exception(clause), clause=clause, words=("subfolder", subfolder), edge=edge):
            adapter.load(class_name, str(folder), subfolder=subfolder)


def _hub_cache(cache_dir, repo_id: str, source) -> None:
    """Lay ``source`` (a checkpoint directory) out as huggingface_hub's cache holds a downloaded
    revision: cache_dir/models--<org>--<name>/refs/main -> commit, snapshots/<commit>/<files>."""
    commit = "c0ffee" + "0" * 34
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(source, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_hub_id_resolves_from_the_local_cache(check, adapter, device, tmp_path):
    """files.hub.offline: a hub id with local_files_only=True (and cache_dir, revision) loads from the
    local cache without the network; an id that is not cached raises error.checkpoint.missing_file
    naming it."""
    clause = "files.hub.offline"
    class_name = _base_class(adapter.framework)
    cache_dir = tmp_path / "hub"
    _hub_cache(cache_dir, "conformance-org/tiny-electra", _base_checkpoint(adapter.framework, tmp_path, "source"))
    check.clause(clause, "files.api.from_pretrained")
    handle = adapter.load(class_name, "conformance-org/tiny-electra", cache_dir=str(cache_dir), revision="main",
                          local_files_only=True)
    check_same_weights(check, adapter.get_weights(handle), case_for(class_name).weights(), clause=clause)
    missing = "error.checkpoint.missing_file"
    with check.raises(spec_exception(missing), clause=clause, words=("conformance-org/not-cached",),
                      edge="hub id not in the offline cache"):
        adapter.load(class_name, "conformance-org/not-cached", cache_dir=str(cache_dir), local_files_only=True)


def test_half_precision_checkpoint_loads_as_float32(check, adapter, device, tmp_path):
    """files.dtype_on_load: a model.safetensors stored in float16 loads as float32 weights holding
    exactly the float16 values."""
    from safetensors.numpy import load_file, save_file

    clause = "files.dtype_on_load"
    class_name = _base_class(adapter.framework)
    directory = _base_checkpoint(adapter.framework, tmp_path, "half")
    weights_file = directory / load_spec().raw("params")["files"]["safetensors"]
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in load_file(weights_file).items()}
    save_file(half, weights_file, metadata={"format": "pt"})
    check.clause(clause)
    loaded = adapter.get_weights(adapter.load(class_name, str(directory)))
    for name, value in half.items():
        if name not in loaded:
            continue  # a name the framework does not keep (reported by the round-trip tests)
        got = np.asarray(loaded[name])
        check.that(got.dtype == np.float32, clause=clause, message=f"{name} loaded as {got.dtype}, expected float32")
        check.equal(got.astype(np.float32), value.astype(np.float32), clause=clause, what=f"parameter {name}")


def test_config_of_another_model_type(check, adapter, device, tmp_path):
    """A config.json of another model type is refused naming both types, whether its name sorts before
    "electra" (bert) or after it (roberta)."""
    clause = "error.checkpoint.wrong_model_type"
    for model_type in ("bert", "roberta"):
        directory = _base_checkpoint(adapter.framework, tmp_path, model_type)
        config_file = directory / load_spec().raw("params")["files"]["config"]
        config = json.loads(config_file.read_text())
        config["model_type"] = model_type
        config_file.write_text(json.dumps(config))
        with check.raises(spec_exception(clause), clause=clause, words=("model_type", model_type, "electra"),
                          edge=f"model_type {model_type}"):
            adapter.load(_base_class(adapter.framework), str(directory))


def test_failed_save_keeps_the_checkpoint(check, adapter, caps, device, model_cache, tmp_path):
    """Saving another model (another config) into a checkpoint directory where the weights file cannot
    be written (a directory occupies its name) raises error.save.failure naming the file, and leaves
    every existing file byte for byte, with no temporary file behind."""
    clause = "error.save.failure"
    class_name = _base_class(adapter.framework)
    directory = _base_checkpoint(adapter.framework, tmp_path, "existing")
    fmt, _, file_name = native_format(adapter, caps)
    (directory / file_name).mkdir()
    (directory / file_name / "occupied").write_text("x")
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in directory.iterdir()}
    other = next(c for c in ALL if c.class_for(adapter.framework) == class_name
                 and spec_config_fields(c.config()) != spec_config_fields(case_for(class_name).config()))
    handle = model_cache.get(class_name, other.config())
    with check.raises(spec_exception(clause), clause=clause, words=(file_name,), edge="weights file name occupied"):
        adapter.save(handle, str(directory), formats=(fmt,))
    after = {p.name: (p.read_bytes() if p.is_file() else None) for p in directory.iterdir()}
    atomic = "files.save.atomic"  # existing files byte for byte, no temporary file left behind
    check.equal(sorted(after), sorted(before), clause=atomic, what="files in the checkpoint directory after the failed save")
    for name, content in before.items():
        check.that(after[name] == content, clause=atomic, message=f"{name} changed although the save failed")


#: the edges of the Flax params checks on save: (clause, what is done to one parameter of the tree)
SAVE_PARAMS_EDGES = {"missing": "error.save.params_mismatch", "unexpected": "error.save.params_mismatch",
                     "row_longer": "error.save.params_mismatch", "axis_more": "error.save.params_mismatch",
                     "int32": "error.save.params_dtype", "bool": "error.save.params_dtype"}


@pytest.mark.parametrize("edge", list(SAVE_PARAMS_EDGES))
def test_flax_save_refuses_params_that_do_not_fit(check, adapter, caps, device, model_cache, tmp_path, edge):
    """save_pretrained(directory, params=tree) with one parameter of the tree missing, added, of another shape
    or of a non-floating dtype raises the clause's error naming that parameter (its tree path or canonical
    name), before anything is written: a checkpoint already in the directory stays byte for byte. Each
    parameter of the tree takes its turn across the edges, drawn by the edge's name."""
    from flax.traverse_util import unflatten_dict

    from conformance.tests._params import expected_params, flax_path

    clause = SAVE_PARAMS_EDGES[edge]
    if adapter.framework != "flax":
        pytest.skip(f"{clause} binds Flax classes only")
    caps.skip_unless("api:native")  # the test hands a params tree to the model object's save_pretrained
    class_name = _base_class("flax")
    case = case_for(class_name)
    handle = model_cache.get(class_name, case.config(), weights=weights_of(case))
    model = handle.native
    names = sorted(expected_params(class_name, case.config()))
    name = names[sum(map(ord, edge)) % len(names)]  # a fixed parameter per edge, a different one for each
    leaves = _tree_leaves(dict(model.params))
    path = flax_path(name)
    value = leaves[path]
    if edge == "missing":
        del leaves[path]
    elif edge == "unexpected":
        path, name = (*path[:-1], "extra"), f"{name.rsplit('.', 1)[0]}.extra"
        leaves[path] = value
    elif edge == "row_longer":
        leaves[path] = np.concatenate([value, value[:1]], axis=0)
    elif edge == "axis_more":
        leaves[path] = value[None]
    else:
        leaves[path] = (value > 0) if edge == "bool" else value.astype(edge)
    directory = tmp_path / "checkpoint"
    adapter.save(handle, str(directory), formats=("safetensors",))
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    words = (edge,) if clause == "error.save.params_dtype" else ()
    with check.raises(spec_exception(clause), clause=clause, words=words, edge=edge) as raised:
        model.save_pretrained(str(directory), params=unflatten_dict(leaves))
    if raised.value is not None:
        message = str(raised.value)
        check.that(name in message or "/".join(path) in message, clause=clause,
                   message=f"the error names neither {name!r} nor {'/'.join(path)!r}: {message!r}")
    after = {p.name: (p.read_bytes() if p.is_file() else None) for p in directory.iterdir()}
    check.equal(sorted(after), sorted(before), clause="files.save.atomic",
                what="files in the checkpoint directory after the refused save")
    for file_name, content in before.items():
        check.that(after.get(file_name) == content, clause="files.save.atomic",
                   message=f"{file_name} changed although the save was refused")


# -- Flax's lazy initialisation (behaviour.flax.do_init) --------------------------------------------
def _tree_leaves(tree, prefix=()) -> dict:
    """{path tuple: numpy leaf} of a nested params tree (a top-level 'params' key is unwrapped)."""
    if not prefix and set(tree) == {"params"}:
        tree = tree["params"]
    out = {}
    for key, value in tree.items():
        if hasattr(value, "items"):
            out.update(_tree_leaves(value, (*prefix, str(key))))
        else:
            out[(*prefix, str(key))] = np.asarray(value)
    return out


def canonical_from_tree(check, tree, class_name: str, config: dict, *, clause: str) -> dict:
    """The canonical state dict of a Flax params tree whose paths and shapes must be exactly those
    params.yaml gives the class (naming rules applied from the spec)."""
    from conformance.tests._params import expected_params, file_shape, flax_path, leaf_rule

    leaves = _tree_leaves(tree)
    expected = expected_params(class_name, config)
    paths = {flax_path(name): e for name, e in expected.items()}
    check.equal(sorted("/".join(p) for p in leaves), sorted("/".join(p) for p in paths), clause=clause,
                what="paths of the params tree")
    state = {}
    for path, e in paths.items():
        check.equal(leaves[path].shape, file_shape(e.name, e.shape, "flax"), clause=clause, what=f"shape of {path}")
        state[e.name] = leaves[path].T if leaf_rule(e.name).get("transpose") else leaves[path]
    return state


def test_flax_do_init_false(check, adapter, caps, device, model_cache, tmp_path):
    """_do_init=False: no params (model.params raises ValueError); init_weights(rng, input_shape) returns
    the spec's tree; the call takes params=...; from_pretrained(..., _do_init=False) returns
    (model, params) holding the checkpoint's weights."""
    clause = "behaviour.flax.do_init"
    if adapter.framework != "flax":
        pytest.skip("behaviour.flax.do_init binds Flax classes only")
    caps.skip_unless("method:model_class")
    import jax

    class_name = _base_class("flax")
    case = case_for(class_name)
    check.clause(clause)
    handle = model_cache.get(class_name, case.config())
    cls = adapter.model_class(class_name)
    caps.skip_unless("api:native")  # the test calls the model object itself
    lazy = cls(handle.native.config, _do_init=False)
    with check.raises(ValueError, clause=clause):
        lazy.params  # noqa: B018
    inputs, flags = call_arguments(case, class_name, caps)
    tree = lazy.init_weights(jax.random.PRNGKey(0), np.shape(inputs["input_ids"]))
    state = canonical_from_tree(check, tree, class_name, handle.config, clause=clause)
    got = lazy(**inputs, params=tree, **flags)
    reference = model_cache.run(model_cache.get(class_name, case.config(), weights=state), inputs, flags=flags)
    compare_fields(check, class_name, {k: (tuple(map(np.asarray, v)) if isinstance(v, tuple) else np.asarray(v))
                                       for k, v in got.items() if v is not None},
                   dict(reference.fields), kind=SELF_KIND, clause=clause)
    saved = model_cache.get(class_name, case.config(), weights=weights_of(case))
    adapter.save(saved, str(tmp_path), formats=("safetensors",))
    loaded = cls.from_pretrained(str(tmp_path), _do_init=False)
    check.that(isinstance(loaded, tuple) and len(loaded) == 2, clause=clause,
               message=f"from_pretrained(_do_init=False) returned {type(loaded).__name__}, not (model, params)")
    state = canonical_from_tree(check, loaded[1], class_name, handle.config, clause=clause)
    check_same_weights(check, state, weights_of(case), clause=clause)
