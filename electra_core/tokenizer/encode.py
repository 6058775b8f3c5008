"""One tokenizer call: classify the inputs (single / pair / batch), run the `tokenizers` backend with
the planned truncation and padding, and gather the output keys into a BatchEncoding."""
from __future__ import annotations

import threading
from typing import Any, Mapping

from electra_core.tokenizer._spec import tokenizer_spec
from electra_core.tokenizer.batch_encoding import BatchEncoding
from electra_core.tokenizer.strategies import EncodingPlan


def _is_words(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value)


def _is_batch_of_pairs(value) -> bool:
    """A batch given as [(text, text_pair), ...] (tuples or 2-lists of str)."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, (list, tuple)) and len(v) == 2 and _is_words(v) for v in value))


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(v).__name__ for v in value})
        return f"{type(value).__name__} of {', '.join(kinds) or 'nothing'}"
    return type(value).__name__


def _as_batch(name: str, value, split: bool) -> tuple[list, bool]:
    """(rows, batched) for ``text`` or ``text_pair``."""
    one = _is_words if split else (lambda v: isinstance(v, str))
    if one(value):
        return [value], False
    if isinstance(value, (list, tuple)) and all(one(v) for v in value):
        return list(value), True
    expected = ("a list of words or a batch of lists of words (is_split_into_words=True)" if split
                else "a str or a list of str")
    raise TypeError(f"{name} must be {expected}, got {_describe(value)}")


def _check_truncation(tok, how: EncodingPlan, has_pair: bool, add_special_tokens: bool) -> None:
    if how.truncation == "do_not_truncate":
        return
    if how.truncation == "only_second" and not has_pair:
        raise ValueError("truncation='only_second' needs a text_pair to truncate, but only one sequence was given "
                         f"(max_length={how.max_length})")
    special = tok.num_special_tokens_to_add(has_pair) if add_special_tokens else 0
    if how.max_length < special:
        raise ValueError(f"max_length={how.max_length} is smaller than the {special} special tokens added to "
                         f"{'a pair' if has_pair else 'a sequence'}; it must be >= {special}")


def _configure(tok, how: EncodingPlan) -> None:
    backend = tok.backend_tokenizer
    if how.truncation != "do_not_truncate":
        backend.enable_truncation(how.max_length, stride=how.stride, strategy=how.truncation,
                                  direction=tok.truncation_side)
    if how.padding != "do_not_pad":
        backend.enable_padding(direction=tok.padding_side, pad_id=tok.pad_token_id, pad_type_id=0,
                               pad_token=tok.pad_token, pad_to_multiple_of=how.pad_to_multiple_of,
                               length=how.max_length if how.padding == "max_length" else None)


#: one call at a time configures and runs a backend: its truncation and padding are state of the shared
#: Rust object, which two threads would overwrite under each other ("Already borrowed"). The backend
#: spreads one batch over its own threads, so a batch per call keeps every core busy.
_BACKEND_LOCK = threading.Lock()


def _run(tok, inputs: list, how: EncodingPlan, add_special_tokens: bool, split: bool) -> list:
    with _BACKEND_LOCK:
        return _configured_run(tok, inputs, how, add_special_tokens, split)


def _configured_run(tok, inputs: list, how: EncodingPlan, add_special_tokens: bool, split: bool) -> list:
    backend = tok.backend_tokenizer
    try:
        _configure(tok, how)
        return backend.encode_batch(inputs, add_special_tokens=add_special_tokens, is_pretokenized=split)
    except Exception as e:  # the backend raises a bare Exception for impossible truncation
        if "Truncation error" in str(e):
            raise ValueError(f"truncation={how.truncation!r} cannot fit the input into max_length={how.max_length}: "
                             f"{e}") from None
        raise
    finally:
        backend.no_truncation()
        backend.no_padding()


_COLUMNS = {
    "input_ids": lambda e: list(e.ids),
    "token_type_ids": lambda e: list(e.type_ids),
    "attention_mask": lambda e: list(e.attention_mask),
    "special_tokens_mask": lambda e: list(e.special_tokens_mask),
    "offset_mapping": lambda e: [tuple(o) for o in e.offsets],
    "length": lambda e: len(e.ids),
}


def encode_rows(tok, text, text_pair, how: EncodingPlan, *, add_special_tokens: bool, is_split_into_words: bool,
                wanted: Mapping[str, bool | None], flags: Mapping[str, bool]) -> BatchEncoding:
    """Encode ``text`` (and ``text_pair``) as the plan says; ``wanted`` holds return_token_type_ids /
    return_attention_mask (None = returned), ``flags`` the optional keys asked for."""
    if text is None:
        raise TypeError("text must be given: a str, a list of str, or lists of words with is_split_into_words=True")
    if text_pair is None and not is_split_into_words and _is_batch_of_pairs(text):
        text, text_pair = [t[0] for t in text], [t[1] for t in text]
    texts, batched = _as_batch("text", text, is_split_into_words)
    inputs: list[Any] = texts
    if text_pair is not None:
        pairs, pair_batched = _as_batch("text_pair", text_pair, is_split_into_words)
        if pair_batched != batched or len(pairs) != len(texts):
            raise ValueError(f"text and text_pair must be both single or both batches of one size; got {len(texts)} "
                             f"text(s) and {len(pairs)} text_pair(s)")
        inputs = list(zip(texts, pairs))
    _check_truncation(tok, how, text_pair is not None, add_special_tokens)
    encodings = _run(tok, inputs, how, add_special_tokens, is_split_into_words) if inputs else []

    overflow = flags.get("overflow_to_sample_mapping", False)
    rows, mapping = [], []
    for index, encoding in enumerate(encodings):
        for row in [encoding, *(encoding.overflowing if overflow else [])]:
            rows.append(row)
            mapping.append(index)

    keys = [k for k in tokenizer_spec().outputs["model_input_names"] if wanted.get(k) is not False]
    keys += [k for k, asked in flags.items() if asked and k in _COLUMNS]
    data: dict[str, Any] = {key: [_COLUMNS[key](row) for row in rows] for key in keys}
    if overflow:
        data["overflow_to_sample_mapping"] = mapping
    if not batched and not overflow and how.return_tensors is None:
        keep = tokenizer_spec().outputs["single_input_keeps_list"]
        data = {key: value if key in keep else value[0] for key, value in data.items()}
    return BatchEncoding(data, encodings=rows, tensor_type=how.return_tensors)
