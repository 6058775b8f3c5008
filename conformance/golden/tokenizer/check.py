"""Check a tokenizer class against ``golden.json`` (the reference ElectraTokenizerFast's outputs).

Used by ``conformance/tests/test_tokenizer.py`` and the project's ``tests/test_tokenizer_golden.py``.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden.json"


@functools.lru_cache(maxsize=None)
def load_golden() -> dict:
    with open(GOLDEN, encoding="utf-8") as f:
        return json.load(f)


def golden_vocab() -> Path:
    """The vocabulary the golden file was generated from; raises if the installed one differs."""
    from electra_core.convert.minilm_package import find_minilm_package

    vocab = find_minilm_package() / "vocab.txt"
    expected = load_golden()["vocab"]["sha256"]
    actual = hashlib.sha256(vocab.read_bytes()).hexdigest()
    if actual != expected:
        raise AssertionError(f"{vocab} has sha256 {actual}, but golden.json was generated from {expected} "
                             f"({load_golden()['vocab']['source']})")
    return vocab


def _exception_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _plain(value):
    """Outputs as JSON data: tuples -> lists, numpy integers -> ints."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


@functools.lru_cache(maxsize=None)
def _tokenizer(tokenizer_class, options_key: str):
    return tokenizer_class(vocab_file=str(golden_vocab()), **json.loads(options_key))


def run_method(tokenizer, case: dict):
    """What ``case`` asks of ``tokenizer`` (the reference's or the one under test), as JSON data: the call's
    keys, a method's return value, a BatchEncoding method applied to the call's result, or get_vocab's
    size and the ids of the case's selected tokens."""
    method, args, kwargs = case["method"], case["args"], case["kwargs"]
    if method == "call":
        return {k: _plain(v) for k, v in tokenizer(*args, **kwargs).items()}
    if "result_kwargs" in case:
        return _plain(getattr(tokenizer(*args, **kwargs), method)(**case["result_kwargs"]))
    result = getattr(tokenizer, method)(*args, **kwargs)
    if method == "get_vocab":
        return {"size": len(result), "ids": {token: result.get(token) for token in case["select"]}}
    return _plain(result)


def check_case(tokenizer_class, case: dict) -> None:
    """Run one golden case on ``tokenizer_class`` (built from the golden vocab with the case's options);
    raise AssertionError describing the first difference."""
    from electra_core.tokenizer._spec import tokenizer_spec

    tokenizer = _tokenizer(tokenizer_class, json.dumps(case["options"], sort_keys=True))
    where = f"{case['id']}: {case['method']}(*{case['args']!r}, **{case['kwargs']!r})"
    if "result_kwargs" in case:
        where += f" on the call's result, with {case['result_kwargs']!r}"
    if "error" in case:
        clause = next(c for c in case["clauses"] if c.startswith("tokenizer.error."))
        expected = tokenizer_spec().error(clause).exception
        try:
            run_method(tokenizer, case)
        except Exception as e:  # noqa: BLE001 - the class is what is checked
            if expected not in _exception_names(e):
                raise AssertionError(f"[{clause}] {where} raised {type(e).__name__}, expected {expected}") from e
            return
        raise AssertionError(f"[{clause}] {where} returned, the reference raised {case['error']} "
                             f"({case['reference_message']}); the spec expects {expected}")
    got = run_method(tokenizer, case)
    if got != case["expected"]:
        raise AssertionError(f"[{case['clauses'][0]}] {where}\n  expected {case['expected']!r}\n  got      {got!r}")
