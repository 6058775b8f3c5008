"""Build the `tokenizers` pipeline (normaliser, pre-tokeniser, WordPiece, template, decoder) that the
spec's ``pipeline`` section describes, from a vocabulary or from a tokenizer.json."""
from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from electra_core.tokenizer._spec import tokenizer_spec


def read_vocab_file(path: str | os.PathLike) -> dict[str, int]:
    """vocab.txt: one token per line, the line number is the id. Returns {token: id}."""
    vocab: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise ValueError(f"vocabulary file {str(path)!r} is not UTF-8 text (binary data at byte {e.start})") from e
    if lines and lines[-1] == "":
        lines.pop()
    for index, line in enumerate(lines):
        token = line.rstrip("\r")
        if "\x00" in token:
            raise ValueError(f"vocabulary file {str(path)!r} holds a NUL byte on line {index + 1}: not a text file")
        if token in vocab:
            raise ValueError(f"vocabulary file {str(path)!r} lists token {token!r} twice "
                             f"(lines {vocab[token] + 1} and {index + 1})")
        vocab[token] = index
    if not vocab:
        raise ValueError(f"vocabulary file {str(path)!r} is empty")
    return vocab


def _fill(value: Any, options: Mapping[str, Any], special_tokens: Mapping[str, str]) -> Any:
    """Replace a spec placeholder ``"{name}"`` by the option or special token it names."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        key = value[1:-1]
        return options[key] if key in options else special_tokens[key]
    return value


def _template(pieces, special_tokens: Mapping[str, str]) -> list[str]:
    return [piece.format(**special_tokens) for piece in pieces]


def _normalizer(options: Mapping[str, Any], special_tokens: Mapping[str, str]):
    spec = dict(tokenizer_spec().pipeline["normalizer"])
    kind = spec.pop("type")
    if kind != "BertNormalizer":
        raise NotImplementedError(f"normalizer type {kind!r} is not supported")
    return normalizers.BertNormalizer(**{k: _fill(v, options, special_tokens) for k, v in spec.items()})


def _check_special_tokens(vocab: Mapping[str, int], special_tokens: Mapping[str, str]) -> None:
    for role, token in special_tokens.items():
        if token not in vocab:
            raise ValueError(f"special token {role}={token!r} is not in the vocabulary ({len(vocab)} tokens)")


def configure(backend: Tokenizer, options: Mapping[str, Any], special_tokens: Mapping[str, str]) -> Tokenizer:
    """Set the parts of ``backend`` that follow the options and special tokens: the normaliser, the
    template, the decoder, the special tokens; clear any baked-in truncation and padding."""
    pipeline = tokenizer_spec().pipeline
    vocab = backend.get_vocab(with_added_tokens=True)
    _check_special_tokens(vocab, special_tokens)
    backend.normalizer = _normalizer(options, special_tokens)
    post = pipeline["post_processor"]
    pieces = post["single"] + post["pair"]
    used = {special_tokens[name] for piece in pieces for name in re.findall(r"\{(\w+)\}", piece)}
    backend.post_processor = processors.TemplateProcessing(
        single=_template(post["single"], special_tokens),
        pair=_template(post["pair"], special_tokens),
        special_tokens=[(t, vocab[t]) for t in sorted(used, key=vocab.get)],
    )
    decoder = dict(pipeline["decoder"])
    decoder.pop("type")
    backend.decoder = decoders.WordPiece(**decoder)
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True)
                                for t in sorted(set(special_tokens.values()), key=vocab.get)])
    backend.no_truncation()
    backend.no_padding()
    return backend


def from_vocab(vocab: Mapping[str, int], options: Mapping[str, Any], special_tokens: Mapping[str, str]) -> Tokenizer:
    """A fresh pipeline around the WordPiece vocabulary ``vocab`` ({token: id})."""
    _check_special_tokens(vocab, special_tokens)
    model = dict(tokenizer_spec().pipeline["model"])
    model.pop("type")
    model = {k: _fill(v, options, special_tokens) for k, v in model.items()}
    backend = Tokenizer(models.WordPiece(dict(vocab), **model))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return configure(backend, options, special_tokens)


def from_tokenizer_json(path: str | os.PathLike, options: Mapping[str, Any],
                        special_tokens: Mapping[str, str]) -> Tokenizer:
    """Load a tokenizer.json; its model must be WordPiece. Truncation and padding are cleared."""
    raw = _read_tokenizer_json(path)
    model = raw.get("model")
    kind = model.get("type") if isinstance(model, dict) else None
    accepted = tokenizer_spec().accepted_tokenizer_json_models
    if kind not in accepted:
        raise ValueError(f"{str(path)!r} holds a {kind!r} tokenizer model; ElectraTokenizerFast needs one of "
                         f"{list(accepted)}")
    for key in tokenizer_spec().cleared_on_load:
        raw[key] = None
    try:
        backend = Tokenizer.from_str(json.dumps(raw))
    except Exception as e:  # the tokenizers library raises a bare Exception for a malformed file
        raise ValueError(f"{str(path)!r} is not a usable tokenizer.json: {e}") from e
    return configure(backend, options, special_tokens)


def _read_tokenizer_json(path: str | os.PathLike) -> dict:
    """The JSON object of a tokenizer.json; ValueError naming the file when it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{str(path)!r} is not a valid tokenizer.json (truncated or not JSON text): {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{str(path)!r} must hold a JSON object, got a {type(raw).__name__}")
    return raw


def to_json(backend: Tokenizer) -> str:
    """tokenizer.json text with the per-call truncation and padding cleared."""
    raw = json.loads(backend.to_str())
    for key in tokenizer_spec().cleared_on_load:
        raw[key] = None
    return json.dumps(raw, ensure_ascii=False, indent=2)
