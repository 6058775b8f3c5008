"""Gradient golden data of the PyTorch reference (clause loss.differentiable; needs the ``reference`` extra).

    python conformance/golden/generate_gradients.py [--out DIR]

For a few golden cases with a loss (``GRADIENT_CASES``: a masked LM with -100 labels, a question
answering head with an end position outside the sequence, a regression sequence classifier with a
head mask), this loads the committed golden checkpoint (conformance/golden/<case>/<Class>/), calls the
reference in eval mode (no dropout; the word embeddings' padding_idx cleared, see ``reference_gradients``) on the
committed golden inputs, labels included, back-propagates the loss and writes ``gradients/<case>/<Class>.safetensors`` holding

    loss              ()      the reference's loss
    grad.<name>       (...)   d loss / d parameter, for every parameter under its canonical PyTorch
                              name (named_parameters: a tied LM head appears once, as the embedding)
    input.<name>      (...)   the call inputs the gradients belong to (ids, masks, labels)

and, in the file's metadata, ``weights_sha256``: the hash of the checkpoint the gradients belong to
(a regenerated golden checkpoint makes the gradient file stale; the test says so). The labels are
the golden inputs' (drawn by cases.py with numpy PCG64 from name-seeded streams). Torch runs
single-threaded with deterministic algorithms and the arrays are written with sorted keys, so two
runs give byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_FLAX", "0")
os.environ.setdefault("USE_TORCH", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run as a script from anywhere in the checkout

from conformance.golden_data import GOLDEN_DIR, get_case  # noqa: E402

#: golden case ids ("<config case>.<reference class>") whose gradients are stored
GRADIENT_CASES = (
    "abs_gelu.ElectraForMaskedLM",
    "abs_gelu.ElectraForQuestionAnswering",
    "relk_relu_regression.ElectraForSequenceClassification",
)
GRADIENTS = "gradients"
GRAD_PREFIX, INPUT_PREFIX = "grad.", "input."


def gradient_file(case_id: str, root: Path = HERE) -> Path:
    case, reference_class = case_id.split(".", 1)
    return Path(root) / GRADIENTS / case / f"{reference_class}.safetensors"


def weights_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reference_gradients(case_id: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({stored name: array}, metadata) of one golden case: loss, gradients and inputs."""
    import torch
    import transformers

    case = get_case(case_id, GOLDEN_DIR)
    model = getattr(transformers, case.reference_class).from_pretrained(
        str(case.directory), attn_implementation="eager").eval()
    # nn.Embedding(padding_idx=pad_token_id) gives the pad row no gradient: a PyTorch training
    # convention, not the loss's derivative (TF and Flax embeddings have no such rule); cleared here
    # so the stored gradient is the derivative (the forward pass does not read padding_idx)
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            module.padding_idx = None
    inputs = case.inputs()
    output = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, return_dict=True)
    output.loss.backward()
    arrays = {"loss": output.loss.detach().numpy().astype(np.float32)}
    for name, parameter in model.named_parameters():
        grad = parameter.grad
        if grad is None:  # a parameter the loss does not reach: its gradient is zero
            grad = torch.zeros_like(parameter)
        arrays[GRAD_PREFIX + name] = grad.detach().numpy().astype(np.float32)
    arrays.update({INPUT_PREFIX + k: v for k, v in inputs.items()})
    # one metadata entry: safetensors writes the metadata map in no fixed order
    return arrays, {"weights_sha256": weights_hash(case.root / case.weights_file)}


def generate(out: Path) -> list[Path]:
    import torch
    import transformers
    from safetensors.numpy import save_file

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    written = []
    for case_id in GRADIENT_CASES:
        arrays, metadata = reference_gradients(case_id)
        path = gradient_file(case_id, out)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: np.require(v, requirements="C") for k, v in sorted(arrays.items())}, str(path),
                  metadata=metadata)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = parser.parse_args(argv)
    written = generate(args.out)
    print(f"wrote {len(written)} gradient files under {args.out / GRADIENTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
