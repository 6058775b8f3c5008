"""The golden data (conformance/golden) is well-formed and regenerates on this machine (compare.py).

Shapes are checked against the spec: parameter names and shapes (params.yaml via
electra_core.checkpoint.expected_shapes), call-argument shapes (classes.yaml) and output shapes
(outputs.yaml), each evaluated with the case's config.
"""
from __future__ import annotations

import shutil
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.golden.compare import compare_trees, format_comparison, golden_files
from conformance.golden_data import GOLDEN_DIR, LABEL_NAMES, load_cases, load_index
from electra_core.checkpoint import expected_shapes
from electra_core.config import ElectraConfig
from spec import load_spec
from spec.shapes import eval_shape, eval_dim

CASES = load_cases()


def _spec_class(case):
    """The spec class whose signature and outputs describe the golden files: the TF class when there
    is one (its outputs include the loss), else the Flax class."""
    return load_spec().classes[case.classes.get("tf") or case.classes["flax"]]


def _dims(case, of_outputs: bool) -> dict:
    """The dynamic dimensions of the case's inputs file, or of its outputs: a cached case's inputs hold the
    positions of both calls, its outputs are the second call's (the positions after cache_prefix, over the
    keys of all positions)."""
    ids = case.inputs()["input_ids"]
    lead = _spec_class(case).lead.split()
    dims = dict(zip(lead, ids.shape[:-1]))
    past = (case.cache_prefix or 0) if of_outputs else 0
    dims["seq"], dims["past_seq"], dims["key_seq"] = ids.shape[-1] - past, past, ids.shape[-1]
    if "encoder_hidden_states" in case.input_names:  # cross-attention cases: (B, Se, H)
        dims["enc_seq"] = case.inputs()["encoder_hidden_states"].shape[-2]
    return dims


def _env(case, of_outputs: bool) -> dict:
    config = ElectraConfig.from_dict(case.config())
    return {**config.to_dict(), "num_labels": config.num_labels, **_dims(case, of_outputs)}


def test_index_lists_existing_unique_cases():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), f"duplicate golden ids: {ids}"
    for c in CASES:
        for rel in (c.config_file, c.weights_file, c.inputs_file, c.outputs_file):
            assert (GOLDEN_DIR / rel).is_file(), f"{c.id}: {rel} is missing"
    index = load_index()
    assert index["reference"]["transformers"] == load_spec().raw("meta")["describes"]["reference_package"]["version"]


def test_every_spec_class_has_golden_cases_and_the_index_matches_the_spec():
    spec = load_spec()
    covered = {c.classes.get(fw) for c in CASES for fw in ("tf", "flax")}
    missing = sorted(name for name in spec.classes if name not in covered)
    assert not missing, f"spec classes without golden data: {missing}"
    for c in CASES:
        for framework in ("tf", "flax"):
            expected = next((k.name for k in spec.classes_for(framework) if k.reference == c.reference_class), None)
            assert c.classes.get(framework) == expected, (
                f"{c.id}: index says {framework} class {c.classes.get(framework)}, spec says {expected}; regenerate")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_weights_have_the_spec_names_and_shapes(case):
    weights = case.weights()
    expected = expected_shapes(case.reference_class, case.config())
    assert sorted(weights) == sorted(expected), (
        f"{case.id}: extra {sorted(set(weights) - set(expected))}, missing {sorted(set(expected) - set(weights))}")
    for name, array in weights.items():
        assert array.shape == expected[name], f"{case.id}: {name} has shape {array.shape}, spec {expected[name]}"
        assert array.dtype == np.float32 and np.all(np.isfinite(array)), f"{case.id}: {name} not finite float32"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_inputs_have_the_spec_shapes_and_ranges(case):
    cls, env, inputs = _spec_class(case), _env(case, of_outputs=False), case.inputs()
    labels = () if case.cache_prefix else cls.labels  # a cached case compares outputs only
    assert set(case.labels()) == set(labels), f"{case.id}: labels {sorted(case.labels())}, spec {cls.labels}"
    for name, array in inputs.items():
        param = cls.call_arg(name)
        shapes = {eval_shape(s, env) for s in (param.shape, *param.alt_shapes)}
        assert array.shape in shapes, f"{case.id}: {name} has shape {array.shape}, spec {param.shape} = {shapes}"
    ids = inputs["input_ids"]
    assert 0 <= ids.min() and ids.max() < env["vocab_size"]
    if "token_type_ids" in inputs:  # core_ids_mask leaves them out (the documented default: zeros)
        assert 0 <= inputs["token_type_ids"].min() and inputs["token_type_ids"].max() < env["type_vocab_size"]
    else:
        assert case.case == "core_ids_mask", f"{case.id}: no token_type_ids"
    if "position_ids" in inputs:
        assert inputs["position_ids"].max() < env["max_position_embeddings"]
    mask = inputs["attention_mask"].reshape(-1, ids.shape[-1])
    assert mask.sum(axis=-1).min() >= 1, f"{case.id}: a row with no visible token"
    assert (mask == 0).any(), f"{case.id}: no padding"
    assert set(np.unique(mask)) <= {0, 1}
    for name in LABEL_NAMES:
        assert name not in inputs or np.issubdtype(inputs[name].dtype, np.number)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_outputs_have_the_spec_shapes_and_are_finite(case):
    out_spec, env = load_spec().output_of(_spec_class(case).name), _env(case, of_outputs=True)
    outputs = case.outputs()
    spec_fields = {f.name: f for f in out_spec.fields}
    assert ("loss" in outputs) == bool(case.labels()), f"{case.id}: loss presence"
    for name, value in outputs.items():
        assert name in spec_fields, f"{case.id}: output {name} is not a field of {out_spec.name}"
        fspec = spec_fields[name]
        items = value if fspec.tuple else (value,)
        if fspec.tuple:
            assert len(items) == eval_dim(fspec.tuple, env), f"{case.id}: {name} has {len(items)} entries"
        expected = eval_shape(fspec.shape, env)
        for i, item in enumerate(items):
            assert item.shape == expected, f"{case.id}: {name}[{i}] has shape {item.shape}, spec {expected}"
            assert item.dtype == np.float32 and np.all(np.isfinite(item)), f"{case.id}: {name}[{i}] not finite"
    for fspec in out_spec.fields:
        if fspec.present_when == "always":
            assert fspec.name in outputs, f"{case.id}: always-present field {fspec.name} missing"


def _generate(out: Path, env: dict) -> None:
    for script in ("generate.py", "generate_gradients.py"):
        done = subprocess.run([sys.executable, str(GOLDEN_DIR / script), "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, f"{script}: {done.stderr[-3000:]}"


@pytest.mark.reference
def test_regeneration_matches_the_committed_data(tmp_path, request):
    """Regenerates the golden data (cases and gradients) and compares it with the committed files
    (conformance/golden/compare.py): inputs, configs, weights and metadata byte for byte, what PyTorch
    computes within the spec's reference_regeneration tolerance. By default torch runs at
    ATEN_CPU_CAPABILITY=default, a CPU code path other than the one that wrote the files (AVX2), so this
    is the check a user on another machine gets. --golden-byte-identical: the machine's own code path
    and every byte compared (for the machine that generates the data)."""
    pytest.importorskip("torch", reason="needs the reference extra (torch)")
    pytest.importorskip("transformers", reason="needs the reference extra (transformers)")
    byte_identical = request.config.getoption("golden_byte_identical")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if not byte_identical:
        env["ATEN_CPU_CAPABILITY"] = "default"
    _generate(tmp_path, env)
    files = golden_files(GOLDEN_DIR)
    assert sorted(golden_files(tmp_path)) == sorted(files), "the generators wrote other files than are committed"
    result = compare_trees(tmp_path, GOLDEN_DIR, files, byte_identical=byte_identical)
    assert result.ok, "\n".join(format_comparison(result))
    assert result.files == len(files) and len(files) > 100


def _copy_case(tmp_path: Path, case) -> tuple[Path, list[str]]:
    """A copy of one golden case folder (and index.json) in tmp_path/fresh: (fresh root, relative files)."""
    fresh = tmp_path / "fresh"
    shutil.copytree(case.directory, fresh / case.directory.relative_to(GOLDEN_DIR))
    shutil.copy(GOLDEN_DIR / "index.json", fresh / "index.json")
    files = ["index.json"] + sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*.*") if p.is_file()
                                    and p.name != "index.json")
    return fresh, files


def _rewrite(path: Path, change) -> None:
    from safetensors.numpy import save_file
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        metadata, arrays = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    change(arrays)
    save_file(arrays, str(path), metadata=metadata)


def test_comparison_tolerates_only_computed_values_within_the_spec(tmp_path):
    """compare_trees: an output moved within reference_regeneration passes, one moved past it fails; any
    change to weights, inputs or config fails however small; missing files fail."""
    tol = load_spec().tolerance("reference_regeneration", "float32", "cpu")
    case = CASES[0]
    fresh, files = _copy_case(tmp_path, case)
    rel = case.directory.relative_to(GOLDEN_DIR).as_posix()
    assert compare_trees(fresh, GOLDEN_DIR, files, byte_identical=True).ok
    field = next(iter(case.outputs()))
    if isinstance(case.outputs()[field], tuple):
        field = f"{field}.0"
    outputs = fresh / rel / "outputs.safetensors"
    _rewrite(outputs, lambda a: a.__setitem__(field, a[field] + np.float32(0.5 * tol.atol)))
    within = compare_trees(fresh, GOLDEN_DIR, files)
    assert within.ok and within.toleranced_tensors > 0, within.problems
    assert not compare_trees(fresh, GOLDEN_DIR, files, byte_identical=True).ok
    _rewrite(outputs, lambda a: a.__setitem__(field, a[field] + np.float32(3 * tol.atol + 3 * tol.rtol * np.abs(a[field]).max())))
    past = compare_trees(fresh, GOLDEN_DIR, files)
    assert [p for p in past.problems if f"{field} max abs error" in p and "reference_regeneration" in p], past.problems
    shutil.copy(case.root / case.outputs_file, outputs)
    _rewrite(fresh / rel / "inputs.safetensors", lambda a: a.__setitem__("input_ids", a["input_ids"] ^ 1))
    _rewrite(fresh / rel / "model.safetensors",
             lambda a: a.__setitem__(sorted(a)[0], np.nextafter(a[sorted(a)[0]], np.float32(np.inf))))
    changed = compare_trees(fresh, GOLDEN_DIR, files)
    assert any("input_ids differs" in p and "byte for byte" in p for p in changed.problems), changed.problems
    assert any("model.safetensors" in p and "differs" in p for p in changed.problems), changed.problems
    (fresh / rel / "config.json").write_text((case.directory / "config.json").read_text() + " ")
    (fresh / rel / "outputs.safetensors").unlink()
    broken = compare_trees(fresh, GOLDEN_DIR, files)
    assert any(p.endswith("config.json: differs from the committed file (compared byte for byte)") for p in broken.problems)
    assert any("outputs.safetensors: missing from the regenerated data" in p for p in broken.problems)


def test_comparison_checks_metadata_names_and_shapes_exactly(tmp_path):
    from safetensors.numpy import save_file

    case = CASES[0]
    fresh, files = _copy_case(tmp_path, case)
    outputs = fresh / case.directory.relative_to(GOLDEN_DIR) / "outputs.safetensors"
    arrays = {k: (v if np.ndim(v) == 0 else v) for k, v in _read_all(outputs).items()}
    name = sorted(arrays)[0]
    save_file({**arrays, name: arrays[name][..., :1].copy(), "extra": np.zeros(1, np.float32)}, str(outputs),
              metadata={"note": "x"})
    problems = compare_trees(fresh, GOLDEN_DIR, files).problems
    assert any("metadata" in p for p in problems), problems
    assert any("['extra'] are not in both files" in p for p in problems), problems
    assert any(f"{name} is float32" in p for p in problems), problems


def _read_all(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


def test_loader_errors_name_the_problem(tmp_path):
    from conformance.golden_data import get_case

    with pytest.raises(KeyError, match="no golden case 'nope'"):
        get_case("nope")
    with pytest.raises(FileNotFoundError, match="no golden index"):
        load_cases(tmp_path)
    shutil.copytree(GOLDEN_DIR / CASES[0].case, tmp_path / CASES[0].case)
    shutil.copy(GOLDEN_DIR / "index.json", tmp_path / "index.json")
    copy = load_cases(tmp_path)[0]
    assert copy.outputs().keys() == CASES[0].outputs().keys()
    (tmp_path / copy.outputs_file).unlink()
    with pytest.raises(FileNotFoundError, match="outputs.safetensors is missing"):
        copy.outputs()


def test_loader_returns_independent_arrays():
    first = CASES[0].inputs()
    first["input_ids"][...] = -1
    assert CASES[0].inputs()["input_ids"].min() >= 0


def test_cross_framework_subset_covers_every_group_and_class():
    """Outside the thorough profile the cross-framework test compares a subset of the golden cases: it
    must still meet every config group (with the bare encoder where the group has one) and every class."""
    from conformance.tests.test_numerics import BARE_ENCODER, cross_cases

    ids = [c.id for c in CASES]
    chosen = cross_cases(ids)
    assert set(chosen) <= set(ids) and len(chosen) < len(ids)
    group, cls = (lambda c: c.split(".", 1)[0]), (lambda c: c.split(".", 1)[1])
    assert {group(c) for c in chosen} == {group(c) for c in ids}
    assert {cls(c) for c in chosen} == {cls(c) for c in ids}
    for g in {group(c) for c in ids if cls(c) == BARE_ENCODER}:
        assert f"{g}.{BARE_ENCODER}" in chosen
    assert cross_cases(["a.X", "a.Y", "b.Y"]) == ["a.X", "b.Y"]  # no bare encoder: a group's first case
