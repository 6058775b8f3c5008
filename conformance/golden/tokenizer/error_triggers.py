"""For each tokenizer error clause of the spec (tokenizer.yaml ``errors``), a call that must raise it,
the values its message fragments name, and the decisions it demonstrates. Used by
``conformance/tests/test_tokenizer.py`` and ``tests/test_tokenizer.py``."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Trigger:
    call: Callable[[], Any]
    values: dict = field(default_factory=dict)  # {placeholder: text} for the message fragments
    decisions: tuple[str, ...] = ()


def _foreign_checkpoint(directory: Path, vocab: Path, tokenizer_class: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_bytes(vocab.read_bytes())
    (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class}))
    return directory


def _empty_directory(workdir: Path) -> Path:
    (workdir / "empty").mkdir(parents=True, exist_ok=True)
    return workdir / "empty"


def error_triggers(tokenizer_class, auto_class, vocab: Path, workdir: Path) -> dict[str, Trigger]:
    """error id -> Trigger, for a tokenizer built from ``vocab`` (the BERT uncased vocabulary)."""
    tok = tokenizer_class(vocab_file=str(vocab))
    size = str(len(tok))
    return {
        "tokenizer.error.padding_strategy": Trigger(lambda: tok("a", padding="middle"), {"value": "middle"}),
        "tokenizer.error.truncation_strategy": Trigger(lambda: tok("a", truncation="shortest"), {"value": "shortest"}),
        "tokenizer.error.return_tensors": Trigger(lambda: tok("a", return_tensors="mlx"), {"value": "mlx"}),
        "tokenizer.error.max_length_value": Trigger(lambda: tok("a", max_length=0, truncation=True), {"value": "0"}),
        "tokenizer.error.max_length_required": Trigger(
            lambda: tok("a", padding="max_length"), {}, ("tokenizer.decision.max_length_padding_requires_length",)),
        "tokenizer.error.max_length_below_special_tokens": Trigger(
            lambda: tok("a b c", "d", truncation=True, max_length=2), {"value": "2", "special": "3"},
            ("tokenizer.decision.max_length_below_special_tokens",)),
        "tokenizer.error.truncation_impossible": Trigger(
            lambda: tok("a b c d e f", "x", truncation="only_second", max_length=5), {"strategy": "only_second"}),
        "tokenizer.error.ragged_tensors": Trigger(
            lambda: tok(["a", "b c"], return_tensors="np"), {}, ("tokenizer.decision.ragged_tensors_raise",)),
        "tokenizer.error.pad_to_multiple_of_mismatch": Trigger(
            lambda: tok("a", padding=True, truncation=True, max_length=10, pad_to_multiple_of=4),
            {"max_length": "10", "pad_to_multiple_of": "4"}),
        "tokenizer.error.padded_length_limit": Trigger(
            lambda: tok("a", padding="max_length", max_length=10**12), {"value": str(10**12), "limit": "1048576"}),
        "tokenizer.error.text_type": Trigger(lambda: tok(["a", 5]), {}),
        "tokenizer.error.pair_batch_mismatch": Trigger(lambda: tok(["a", "b"], ["c"]), {"len_text": "2", "len_pair": "1"}),
        "tokenizer.error.ids_out_of_range": Trigger(
            lambda: tok.decode([101, len(tok)]), {"value": size, "vocab_size": size},
            ("tokenizer.decision.out_of_range_ids_raise",)),
        "tokenizer.error.missing_files": Trigger(lambda: auto_class.from_pretrained(_empty_directory(workdir)), {}),
        "tokenizer.error.unsupported_tokenizer": Trigger(
            lambda: auto_class.from_pretrained(_foreign_checkpoint(workdir / "t5", vocab, "T5Tokenizer")),
            {"tokenizer_class": "T5Tokenizer"}),
        "tokenizer.error.special_token_not_in_vocab": Trigger(
            lambda: tokenizer_class(vocab_file=str(vocab), mask_token="<mask>"), {"token": "<mask>"}),
        "tokenizer.error.option_value": Trigger(
            lambda: tokenizer_class(vocab_file=str(vocab), padding_side="middle"),
            {"option": "padding_side", "value": "middle"}),
    }


def check_error(error, trigger: Trigger) -> None:
    """Run ``trigger``; it must raise the spec's exception class (by name along the MRO) with a message
    holding every fragment of ``error.message`` (placeholders filled from ``trigger.values``)."""
    try:
        trigger.call()
    except Exception as e:  # noqa: BLE001 - the class is what is checked
        names = {cls.__name__ for cls in type(e).__mro__}
        assert error.exception in names, f"[{error.id}] raised {type(e).__name__}: {e}; expected {error.exception}"
        message = str(e).lower()
        for fragment in error.message:
            wanted = fragment.format(**trigger.values).lower()
            assert wanted in message, f"[{error.id}] message lacks {wanted!r}: {message!r}"
        return
    raise AssertionError(f"[{error.id}] nothing was raised")
