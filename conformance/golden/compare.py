"""Compare regenerated golden data with the committed files.

    python conformance/golden/compare.py FRESH [--committed DIR] [--byte-identical]

What is reproducible on every machine is compared byte for byte: ``index.json``, every ``config.json``,
the weights (``model.safetensors``), the inputs (``inputs.safetensors``), the stored gradient inputs and
every file's metadata, tensor names, dtypes and shapes. What PyTorch computes (the tensors of
``outputs.safetensors``; ``loss`` and ``grad.*`` of the gradient files) depends on the CPU kernels, whose
summation order differs between instruction sets (AVX-512, AVX2, plain SSE), so it is compared within
the spec's ``reference_regeneration`` tolerance (``spec/data/tolerances.yaml``). ``--byte-identical``
compares everything byte for byte: true only on the machine (and instruction set) that wrote the files.

The command prints each problem and, per kind of computed tensor, the largest error and its share of
the tolerance (the spread the spec's tolerance was set from); it exits 1 when there is a problem.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run as a script from anywhere in the checkout

TOLERANCE_KIND = "reference_regeneration"


def computed_by_the_reference(relative_path: str, tensor: str) -> bool:
    """Whether a stored tensor is a result of PyTorch's kernels (not drawn by numpy or copied)."""
    if Path(relative_path).name == "outputs.safetensors":
        return True
    return relative_path.startswith("gradients/") and (tensor == "loss" or tensor.startswith("grad."))


@dataclass
class Comparison:
    problems: list[str] = field(default_factory=list)
    #: "outputs" / "gradients" -> (max abs error, max error / allowance, where)
    spread: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    files: int = 0
    exact_tensors: int = 0
    toleranced_tensors: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def measured(self, group: str, err: float, ratio: float, where: str) -> None:
        if group not in self.spread or ratio > self.spread[group][1]:
            self.spread[group] = (err, ratio, where)


def _safetensors(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return dict(f.metadata() or {}), {k: f.get_tensor(k) for k in f.keys()}


def _compare_safetensors(rel: str, fresh: Path, committed: Path, tolerance, out: Comparison) -> None:
    (meta_a, arrays_a), (meta_b, arrays_b) = _safetensors(fresh), _safetensors(committed)
    if meta_a != meta_b:
        out.problems.append(f"{rel}: metadata {meta_a} differs from the committed {meta_b}")
    if sorted(arrays_a) != sorted(arrays_b):
        out.problems.append(f"{rel}: tensors {sorted(set(arrays_a) ^ set(arrays_b))} are not in both files")
    group = "gradients" if rel.startswith("gradients/") else "outputs"
    for name in sorted(set(arrays_a) & set(arrays_b)):
        a, b = arrays_a[name], arrays_b[name]
        if (a.dtype, a.shape) != (b.dtype, b.shape):
            out.problems.append(f"{rel}: {name} is {a.dtype}{a.shape}, committed {b.dtype}{b.shape}")
        elif not computed_by_the_reference(rel, name) or tolerance is None:
            out.exact_tensors += 1
            if a.tobytes() != b.tobytes():
                out.problems.append(f"{rel}: {name} differs from the committed values (compared byte for byte)")
        else:
            out.toleranced_tensors += 1
            ok, err = tolerance.check(a, b)
            allowance = tolerance.atol + tolerance.rtol * np.abs(b.astype(np.float64))
            ratio = float(np.max(np.abs(a.astype(np.float64) - b) / allowance)) if a.size else 0.0
            out.measured(group, err, ratio, f"{rel}:{name}")
            if not ok:
                out.problems.append(f"{rel}: {name} max abs error {err:.3g} exceeds the {TOLERANCE_KIND} tolerance "
                                    f"(atol {tolerance.atol:g}, rtol {tolerance.rtol:g})")


def compare_trees(fresh: Path, committed: Path, relative_paths: list[str], *,
                  byte_identical: bool = False) -> Comparison:
    """Compare ``relative_paths`` (files below both roots) as the module docstring says."""
    from spec import load_spec

    tolerance = None if byte_identical else load_spec().tolerance(TOLERANCE_KIND, "float32", "cpu")
    out = Comparison()
    for rel in relative_paths:
        a, b = Path(fresh) / rel, Path(committed) / rel
        if not a.is_file() or not b.is_file():
            out.problems.append(f"{rel}: {'missing from the regenerated data' if not a.is_file() else 'not committed'}")
            continue
        out.files += 1
        if a.read_bytes() == b.read_bytes():
            continue
        if rel.endswith(".safetensors"):
            _compare_safetensors(rel, a, b, tolerance, out)
        else:
            out.problems.append(f"{rel}: differs from the committed file (compared byte for byte)")
    return out


def golden_files(root: Path) -> list[str]:
    """Every file the two generators write below ``root``: index.json, the case folders, gradients/."""
    cases = sorted({entry["case"] for entry in json.loads((root / "index.json").read_text())["cases"]})
    files = [root / "index.json"] + [p for folder in (*cases, "gradients")
                                     for p in sorted((root / folder).rglob("*")) if p.is_file()]
    return [p.relative_to(root).as_posix() for p in files]


def format_comparison(result: Comparison) -> list[str]:
    lines = [f"{result.files} files: {result.exact_tensors} tensors compared byte for byte, "
             f"{result.toleranced_tensors} within the {TOLERANCE_KIND} tolerance"]
    for group, (err, ratio, where) in sorted(result.spread.items()):
        lines.append(f"  {group}: max abs error {err:.3g} ({ratio:.3g} of the tolerance) at {where}")
    lines.extend(f"PROBLEM {p}" for p in result.problems)
    lines.append("OK" if result.ok else f"{len(result.problems)} problem(s)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fresh", type=Path, help="the folder the generators wrote (their --out)")
    parser.add_argument("--committed", type=Path, default=HERE, help="default: this folder")
    parser.add_argument("--byte-identical", action="store_true",
                        help="compare the computed tensors byte for byte too (the generating machine only)")
    args = parser.parse_args(argv)
    files = golden_files(args.committed)
    result = compare_trees(args.fresh, args.committed, files, byte_identical=args.byte_identical)
    print("\n".join(format_comparison(result)))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
