"""The golden data (conformance/golden) is well-formed and regenerates byte for byte.

Shapes are checked against the spec: parameter names and shapes (params.yaml via
electra_core.checkpoint.expected_shapes), call-argument shapes (classes.yaml) and output shapes
(outputs.yaml), each evaluated with the case's config.
"""
from __future__ import annotations

import hashlib
import shutil
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def _dims(case) -> dict:
    ids = case.inputs()["input_ids"]
    lead = _spec_class(case).lead.split()
    dims = dict(zip(lead, ids.shape[:-1]))
    dims["seq"], dims["past_seq"] = ids.shape[-1], 0
    if "encoder_hidden_states" in case.input_names:  # cross-attention cases: (B, Se, H)
        dims["enc_seq"] = case.inputs()["encoder_hidden_states"].shape[-2]
    return dims


def _env(case) -> dict:
    config = ElectraConfig.from_dict(case.config())
    return {**config.to_dict(), "num_labels": config.num_labels, **_dims(case)}


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
    cls, env, inputs = _spec_class(case), _env(case), case.inputs()
    assert set(case.labels()) == set(cls.labels), f"{case.id}: labels {sorted(case.labels())}, spec {cls.labels}"
    for name, array in inputs.items():
        param = cls.call_arg(name)
        shapes = {eval_shape(s, env) for s in (param.shape, *param.alt_shapes)}
        assert array.shape in shapes, f"{case.id}: {name} has shape {array.shape}, spec {param.shape} = {shapes}"
    ids = inputs["input_ids"]
    assert 0 <= ids.min() and ids.max() < env["vocab_size"]
    assert 0 <= inputs["token_type_ids"].min() and inputs["token_type_ids"].max() < env["type_vocab_size"]
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
    out_spec, env = load_spec().output_of(_spec_class(case).name), _env(case)
    outputs = case.outputs()
    spec_fields = {f.name: f for f in out_spec.fields}
    assert ("loss" in outputs) == bool(_spec_class(case).labels), f"{case.id}: loss presence"
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


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of index.json and of every file in the case folders (other folders, e.g. the
    tokenizer's golden data, are not generated here)."""
    files = [root / "index.json"] + [p for case in sorted({c.case for c in CASES})
                                     for p in sorted((root / case).rglob("*")) if p.is_file()]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.reference
def test_regeneration_is_byte_identical(tmp_path):
    pytest.importorskip("torch", reason="needs the reference extra (torch)")
    pytest.importorskip("transformers", reason="needs the reference extra (transformers)")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, str(GOLDEN_DIR / "generate.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh, committed = _hashes(tmp_path), _hashes(GOLDEN_DIR)
    assert sorted(fresh) == sorted(committed), (
        f"files differ: new {sorted(set(fresh) - set(committed))}, gone {sorted(set(committed) - set(fresh))}")
    changed = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not changed, f"regenerated files differ from the committed ones: {changed}"


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
