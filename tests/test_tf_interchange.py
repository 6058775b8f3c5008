"""Checkpoint interchange with transformers 4.57.6: checkpoints written by its PyTorch classes
(model.safetensors) and TF classes (tf_model.h5, made in a subprocess on tf-keras) load into impl_tf
and give the PyTorch reference's outputs; what impl_tf saves loads in transformers' PyTorch classes
(safetensors) and TF classes (h5, subprocess) with equal outputs. Max errors are printed (-s).
The transformers-TF half runs a tf-keras subprocess (~1 minute) and is marked slow."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spec import load_spec
from tf_helpers import assert_close, run_torch, tiny_config, torch_reference

pytest.importorskip("torch")
pytestmark = pytest.mark.reference
import impl_tf  # noqa: E402

TF_CLASSES = [c.name for c in load_spec().classes_for("tf")]
DOCUMENTED = [c.name for c in load_spec().classes_for("tf") if not c.extension]  # transformers has these in TF
WORKER = Path(__file__).with_name("tf_reference_worker.py")


def _config(class_name):
    extra = {"num_labels": 2} if class_name == "TFElectraForQuestionAnswering" else {}
    if class_name == "TFElectraForCausalLM":
        extra["is_decoder"] = True
    return tiny_config(**extra)  # absolute positions, tied embeddings, E != H (projection)


def _inputs(class_name):
    rng = np.random.RandomState(7)
    lead = (2, 3) if class_name == "TFElectraForMultipleChoice" else (2,)
    mask = np.ones(lead + (6,), np.int32)
    mask[..., -1] = 0
    return dict(input_ids=rng.randint(0, 40, lead + (6,)).astype(np.int32), attention_mask=mask,
                token_type_ids=rng.randint(0, 3, lead + (6,)).astype(np.int32))


def _tensor_fields(out):
    return {k: np.asarray(v) for k, v in out.items() if not isinstance(v, tuple)}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """PyTorch checkpoints of every class, loaded into impl_tf and saved again (in-process, fast)."""
    root = tmp_path_factory.mktemp("interchange")
    data, errors = {}, {}
    for name in TF_CLASSES:
        config = _config(name)
        pt = torch_reference(name, config)
        pt.save_pretrained(root / name / "pt")
        inputs = _inputs(name)
        np.savez(root / name / "inputs.npz", **inputs)
        ours = impl_tf.__dict__[name].from_pretrained(root / name / "pt")
        ours.save_pretrained(root / name / "ours", formats=("safetensors", "h5"))
        ours.save_pretrained(root / name / "ours_h5", formats=("h5",))  # transformers' TF prefers safetensors
        data[name] = dict(pt=pt, inputs=inputs, ours_from_pt=_tensor_fields(ours(**inputs)),
                          reference=_tensor_fields(run_torch(pt, inputs)))
    yield dict(root=root, data=data, errors=errors)
    print("\nmax abs error vs the PyTorch reference:")
    for key, value in sorted(errors.items()):
        print(f"  {key}: {value:.2e}")


@pytest.fixture(scope="module")
def transformers_tf(exchange):
    """One subprocess on tf-keras: converts the PT checkpoints with transformers' TF classes (h5) and
    runs transformers' TF classes on our h5 files."""
    root, jobs = exchange["root"], []
    for name in DOCUMENTED:
        jobs += [dict(action="convert", **{"class": name}, src=str(root / name / "pt"), dst=str(root / name / "hf_tf")),
                 dict(action="run", **{"class": name}, src=str(root / name / "ours_h5"),
                      inputs=str(root / name / "inputs.npz"), out=str(root / name / "hf_tf_out.npz"))]
    (root / "jobs.json").write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run([sys.executable, str(WORKER), str(root / "jobs.json")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return exchange


def _compare(errors, key, ours, reference):
    worst = 0.0
    for field, value in reference.items():
        if field in ours:
            worst = max(worst, assert_close(ours[field], value, field, where=f"{key}: "))
    assert set(ours) >= {k for k in reference if k != "past_key_values"}
    errors[key] = worst


@pytest.mark.parametrize("class_name", TF_CLASSES)
def test_pytorch_safetensors_load_and_match(exchange, class_name):
    d = exchange["data"][class_name]
    _compare(exchange["errors"], f"{class_name} from PT safetensors", d["ours_from_pt"], d["reference"])


@pytest.mark.slow
@pytest.mark.parametrize("class_name", DOCUMENTED)
def test_transformers_tf_h5_loads_and_matches(transformers_tf, class_name):
    exchange = transformers_tf
    d, directory = exchange["data"][class_name], exchange["root"] / class_name / "hf_tf"
    assert (directory / "tf_model.h5").exists() and not (directory / "model.safetensors").exists()
    ours = impl_tf.__dict__[class_name].from_pretrained(directory)
    _compare(exchange["errors"], f"{class_name} from HF TF h5", _tensor_fields(ours(**d["inputs"])), d["reference"])


@pytest.mark.parametrize("class_name", TF_CLASSES)
def test_our_safetensors_load_in_transformers_pytorch(exchange, class_name):
    import transformers

    d = exchange["data"][class_name]
    pt_name = load_spec().classes[class_name].reference
    pt = getattr(transformers, pt_name).from_pretrained(exchange["root"] / class_name / "ours").eval()
    out = {k: v.numpy() for k, v in run_torch(pt, d["inputs"]).items() if hasattr(v, "numpy")}
    _compare(exchange["errors"], f"{class_name} ours -> PT", out, d["reference"])


@pytest.mark.slow
@pytest.mark.parametrize("class_name", DOCUMENTED)
def test_our_h5_loads_in_transformers_tf(transformers_tf, class_name):
    exchange = transformers_tf
    d = exchange["data"][class_name]
    out = dict(np.load(exchange["root"] / class_name / "hf_tf_out.npz"))
    _compare(exchange["errors"], f"{class_name} ours h5 -> HF TF", out, d["reference"])
