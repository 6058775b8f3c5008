"""Regenerate the golden data with the PyTorch reference (needs the ``reference`` extra).

    python conformance/golden/generate.py [--out DIR]

For every case of ``cases.py`` and every reference class it lists, this builds the reference model
(transformers' PyTorch Electra* class, eager attention, float32, eval mode), overwrites every parameter
with seeded values that are large enough to make each one matter (biases and LayerNorm parameters
are non-trivial, attention is far from uniform), saves it with ``save_pretrained`` (config.json +
model.safetensors, canonical PyTorch names), draws the call inputs (``inputs.safetensors``), runs the
model once with every output requested and labels given (a case with ``cache_prefix``: the positions
from cache_prefix on, after one call per earlier position that builds the key/value cache, and no labels),
and writes every output field
(``outputs.safetensors``; a tuple field ``f`` is stored as ``f.0``, ``f.1``, ...; past key/values per
layer as ``past_key_values.<i>`` of shape (2, B, N, S, D)). ``index.json`` lists the cases.

Everything is deterministic: parameters and inputs come from numpy PCG64 streams seeded by names,
torch runs single-threaded with deterministic algorithms, and the files are written with sorted
keys, so two runs give byte-identical files.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

# the reference is the PyTorch classes: keep transformers from importing TensorFlow / JAX
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_FLAX", "0")
os.environ.setdefault("USE_TORCH", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run as a script from anywhere in the checkout

from conformance.golden.cases import CASES, case_seed, config_for, draw_inputs, flags_for  # noqa: E402

COMMAND = "python conformance/golden/generate.py"
INDEX = "index.json"


def _framework_classes(reference_class: str) -> dict[str, str | None]:
    """The TF and Flax class names that check against a reference class, from the spec."""
    from spec import load_spec

    return {framework: next((c.name for c in load_spec().classes_for(framework)
                             if c.reference == reference_class), None) for framework in ("tf", "flax")}


def _parameter_values(case_id: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Seeded values for one parameter; the seed ignores the ``electra.`` prefix, so the base
    weights of every class of a case are equal."""
    rng = np.random.default_rng(case_seed(case_id, name.removeprefix("electra.")))
    normal = rng.standard_normal(shape)
    if name.endswith("LayerNorm.weight"):
        values = 1.0 + 0.2 * normal
    elif name.endswith("bias"):
        values = 0.2 * normal
    elif "embedding" in name.split(".")[-2]:
        values = 0.5 * normal
    else:  # Linear (out, in)
        values = normal / np.sqrt(shape[-1])
    return values.astype(np.float32)


def _randomise(model, case_id: str) -> None:
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():  # tied tables appear once
            parameter.copy_(torch.from_numpy(_parameter_values(case_id, name, tuple(parameter.shape))))


def _flatten_outputs(output) -> tuple[dict[str, np.ndarray], dict[str, int | None]]:
    """ModelOutput -> ({stored name: array}, {field: tuple length or None}) in field order."""
    from transformers.cache_utils import Cache

    arrays, fields = {}, {}
    for key, value in output.items():
        if isinstance(value, Cache):
            legacy = value.to_legacy_cache()
            value = tuple(np.stack([layer[0].numpy(), layer[1].numpy()]) for layer in legacy)
        if isinstance(value, tuple):
            fields[key] = len(value)
            for i, item in enumerate(value):
                arrays[f"{key}.{i}"] = np.asarray(item, dtype=np.float32)
        else:
            fields[key] = None
            arrays[key] = value.detach().numpy().astype(np.float32)
    return arrays, fields


def _save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.require(v, requirements="C") for k, v in sorted(arrays.items())}, str(path))


PER_POSITION = ("input_ids", "token_type_ids", "position_ids")


def _positions(inputs: dict, start: int, stop: int) -> dict:
    """The inputs of positions start..stop-1: per-position inputs sliced, the attention mask over positions
    0..stop-1 (the cached and the current ones), the rest whole."""
    return {k: (v[:, start:stop] if k in PER_POSITION else v[:, :stop] if k == "attention_mask" else v)
            for k, v in inputs.items()}


def _call(model, inputs: dict, flags: dict, cache_prefix: int | None):
    """The reference's output on the inputs; with ``cache_prefix`` P: the output of the call on positions
    P.. with the key/value cache of positions 0..P-1. The reference builds that cache one token per call:
    with a cache (and use_cache=True creates one) it puts every query of a call at the last key's position,
    which is right only for single-token calls (decision.relative_positions_with_cache)."""
    if cache_prefix is None:
        return model(**inputs, **flags)
    past = None
    for position in range(cache_prefix):
        past = model(**_positions(inputs, position, position + 1), past_key_values=past,
                     use_cache=True).past_key_values
    seq = inputs["input_ids"].shape[1]
    return model(**_positions(inputs, cache_prefix, seq), past_key_values=past, **flags)


def generate_case(case: dict, class_name: str, out: Path, versions: dict) -> dict:
    import torch
    import transformers

    config = transformers.ElectraConfig(**config_for(case, class_name))
    config._attn_implementation = "eager"
    model = getattr(transformers, class_name)(config).eval()
    _randomise(model, case["id"])
    case_id = f"{case['id']}.{class_name}"
    folder = out / case["id"] / class_name
    # saved before the call: the reference writes an inferred problem_type back into its config
    model.save_pretrained(str(folder), safe_serialization=True)
    inputs = draw_inputs(case, class_name)
    _save_arrays(inputs, folder / "inputs.safetensors")
    flags = flags_for(case, class_name)
    with torch.no_grad():
        output = _call(model, {k: torch.from_numpy(v) for k, v in inputs.items()}, flags, case.get("cache_prefix"))
    arrays, fields = _flatten_outputs(output)
    _save_arrays(arrays, folder / "outputs.safetensors")
    rel = folder.relative_to(out).as_posix()
    cached = {"cache_prefix": case["cache_prefix"]} if "cache_prefix" in case else {}
    return {
        **cached,
        "id": case_id,
        "case": case["id"],
        "reference_class": class_name,
        "classes": _framework_classes(class_name),
        "config": f"{rel}/config.json",
        "weights": f"{rel}/model.safetensors",
        "inputs": f"{rel}/inputs.safetensors",
        "input_names": list(inputs),
        "outputs": f"{rel}/outputs.safetensors",
        "fields": list(fields),
        "tuple_lengths": {k: n for k, n in fields.items() if n is not None},
        "flags": flags,
        "reference": versions,
        "command": COMMAND,
    }


def generate(out: Path) -> list[dict]:
    import torch
    import transformers

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    versions = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]}
    entries = [generate_case(case, name, out, versions) for case in CASES for name in case["classes"]]
    with open(out / INDEX, "w", encoding="utf-8") as f:
        json.dump({"reference": versions, "command": COMMAND, "cases": entries}, f, indent=1, sort_keys=True)
        f.write("\n")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.out.mkdir(parents=True, exist_ok=True)
    entries = generate(args.out)
    print(f"wrote {len(entries)} golden cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
