"""ElectraTokenizerFast against the reference's golden token ids (conformance/golden/tokenizer/golden.json):
every case of the hard-string corpus, under each option set, truncation strategy and padding variant,
gives the reference's ids, type ids, masks, tokens and decoded text, and where the reference raised,
the error the spec names. Framework-neutral: runs once per session, not per implementation or device."""
from __future__ import annotations

import pytest

from conformance.golden.tokenizer.check import check_case, load_golden

_CASES = load_golden()["cases"]


def _tokenizer_class():
    from electra_core.tokenizer import ElectraTokenizerFast

    return ElectraTokenizerFast


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"], marks=pytest.mark.clause(*c["clauses"]))
                                  for c in _CASES])
def test_golden_tokenizer_case(case):
    check_case(_tokenizer_class(), case)


@pytest.mark.clause("tokenizer.strategy.truncation.longest_first", "tokenizer.strategy.truncation.only_first",
                    "tokenizer.strategy.truncation.only_second", "tokenizer.strategy.padding.longest",
                    "tokenizer.strategy.padding.max_length", "tokenizer.strategy.padding.do_not_pad")
def test_golden_corpus_covers_every_strategy():
    from electra_core.tokenizer._spec import tokenizer_spec

    covered = {clause for case in _CASES for clause in case["clauses"]}
    strategies = tokenizer_spec().strategies
    wanted = {f"tokenizer.strategy.{kind}.{name}" for kind in ("padding", "truncation") for name in strategies[kind]
              if name not in ("do_not_truncate",)}
    assert wanted <= covered, f"strategies without a golden case: {sorted(wanted - covered)}"


def _variant_clause_ids() -> list[str]:
    """The clauses of every method, method argument and constructor option."""
    from spec import load_spec

    return [c for c in load_spec().tokenizer.clause_ids() if c.startswith(("tokenizer.method.", "tokenizer.option."))]


#: call arguments given a non-default value by a test of this module rather than by a golden case
_CALL_ARGUMENTS_TESTED_HERE = {"return_tensors": "test_tokenizer_numpy_tensors"}


@pytest.mark.clause(*_variant_clause_ids())
def test_golden_corpus_varies_every_method_argument_and_option():
    """Every public method of tokenizer.yaml `methods` has a golden case, and every argument of every
    method (and of __call__), and every constructor option, is given a value other than its default by
    some case: a method or argument variant no case exercises could be wrong unseen."""
    spec = _spec()
    missing = []
    for method, defaults in [("call", spec.call_defaults), *spec.method_defaults.items()]:
        cases = [c for c in _CASES if c["method"] == method]
        if not cases:
            missing.append(f"method {method}: no case")
        for argument, default in defaults.items():
            given = (c.get("result_kwargs", c["kwargs"]) for c in cases)
            if not any(argument in g and g[argument] != default for g in given) \
                    and argument not in (_CALL_ARGUMENTS_TESTED_HERE if method == "call" else {}):
                missing.append(f"{method}({argument}=...): never other than {default!r}")
    for option in spec.options:
        if not any(option.name in c["options"] and c["options"][option.name] != option.default for c in _CASES):
            missing.append(f"option {option.name}: never other than {option.default!r}")
    assert not missing, "golden corpus gaps (add cases to conformance/golden/tokenizer/corpus.py):\n" + "\n".join(missing)


# -- error clauses, files, special tokens, tensors ---------------------------------------------
def _spec():
    from electra_core.tokenizer._spec import tokenizer_spec

    return tokenizer_spec()


def _classes():
    from electra_core.tokenizer import AutoTokenizer, ElectraTokenizerFast

    return ElectraTokenizerFast, AutoTokenizer


def _trigger_decisions() -> dict:
    """error id -> the decisions its trigger demonstrates, known at collection time so that the
    report attributes them (markers added while a test runs come too late). Building the triggers
    calls nothing; a missing vocabulary leaves the test itself to fail."""
    import tempfile
    from pathlib import Path

    from conformance.golden.tokenizer.check import golden_vocab
    from conformance.golden.tokenizer.error_triggers import error_triggers

    try:
        triggers = error_triggers(*_classes(), golden_vocab(), Path(tempfile.gettempdir()) / "never-used")
    except Exception:  # noqa: BLE001 - reported by the test, not at collection
        return {}
    return {error_id: t.decisions for error_id, t in triggers.items()}


def _error_params():
    from spec import load_spec

    decisions = _trigger_decisions()
    return [pytest.param(e.id, id=e.id, marks=pytest.mark.clause(e.id, *decisions.get(e.id, ())))
            for e in load_spec().tokenizer.errors]


@pytest.mark.parametrize("error_id", _error_params())
def test_tokenizer_error_clause(error_id, tmp_path):
    from conformance.golden.tokenizer.check import golden_vocab
    from conformance.golden.tokenizer.error_triggers import check_error, error_triggers

    check_error(_spec().error(error_id), error_triggers(*_classes(), golden_vocab(), tmp_path)[error_id])


@pytest.mark.clause("tokenizer.file.vocab", "tokenizer.file.tokenizer", "tokenizer.file.config",
                    "tokenizer.file.special_tokens_map", "tokenizer.option.model_max_length")
def test_tokenizer_files_round_trip(tmp_path):
    import json

    from conformance.golden.tokenizer.check import golden_vocab

    tokenizer_class, auto_class = _classes()
    spec = _spec()
    tok = tokenizer_class(vocab_file=str(golden_vocab()), do_lower_case=False, model_max_length=64)
    tok.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f["filename"] for f in spec.files if f["written"])
    saved = json.loads((tmp_path / spec.filename("tokenizer")).read_text(encoding="utf-8"))
    assert all(saved[key] is None for key in spec.cleared_on_load)
    config = json.loads((tmp_path / spec.filename("config")).read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == spec.saved_tokenizer_class
    again = auto_class.from_pretrained(tmp_path)
    assert (again.do_lower_case, again.model_max_length) == (False, 64)
    texts = [case["args"][0] for case in _CASES if case["id"].startswith("text.cased.")]
    assert [again(t) for t in texts] == [tok(t) for t in texts]
    assert len(again(" ".join(["word"] * 100), truncation=True)["input_ids"]) == 64


@pytest.mark.clause(*[f"tokenizer.special_token.{name}" for name in
                      ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")])
def test_tokenizer_special_tokens():
    from conformance.golden.tokenizer.check import golden_vocab

    tokenizer_class, _ = _classes()
    tok = tokenizer_class(vocab_file=str(golden_vocab()))
    for role, default in _spec().special_token_defaults.items():
        assert getattr(tok, role) == default
        token_id = getattr(tok, f"{role}_id")
        assert tok.convert_ids_to_tokens(token_id) == default
        assert tok(default, add_special_tokens=False)["input_ids"] == [token_id], f"{default} is split or normalised"
        assert default not in tok.decode([token_id], skip_special_tokens=True)


@pytest.mark.clause("tokenizer.call.default.return_tensors", "tokenizer.output.input_ids",
                    "tokenizer.output.attention_mask", "tokenizer.strategy.truncation.do_not_truncate")
def test_tokenizer_numpy_tensors():
    from conformance.golden.tokenizer.check import golden_vocab

    tokenizer_class, _ = _classes()
    tok = tokenizer_class(vocab_file=str(golden_vocab()))
    lists = tok(["a b c", "d"], padding=True)
    arrays = tok(["a b c", "d"], padding=True, return_tensors="np")
    assert list(arrays) == list(_spec().outputs["model_input_names"])
    for key, value in arrays.items():
        assert str(value.dtype) == _spec().call["tensor_dtype"]["np"] and value.tolist() == lists[key]
    single = tok("a b c", return_tensors="np")
    assert single["input_ids"].shape == (1, 5)
    long_text = " ".join(["word"] * 600)
    assert len(tok(long_text)["input_ids"]) == 602  # no truncation unless asked


# -- the optional outputs: absent by default, right when asked for -------------------------------
_TEXTS = ["Hello, unaffable world of tokenizers", "a b"]  # no special token strings in the raw text
_OVERFLOW = {"truncation": True, "max_length": 6, "stride": 1}  # what return_overflowing_tokens needs


def _golden_tokenizer():
    from conformance.golden.tokenizer.check import golden_vocab

    return _classes()[0](vocab_file=str(golden_vocab()))


def _special_ids(tok) -> set:
    return {getattr(tok, f"{role}_id") for role in _spec().special_token_defaults}


def _check_special_tokens_mask(tok, texts, encoded, asked):
    for ids, mask in zip(encoded["input_ids"], asked["special_tokens_mask"]):
        assert mask == [int(i in _special_ids(tok)) for i in ids], f"special_tokens_mask {mask} for ids {ids}"


def _check_offset_mapping(tok, texts, encoded, asked):
    for text, ids, spans in zip(texts, encoded["input_ids"], asked["offset_mapping"]):
        for token, (start, end) in zip(tok.convert_ids_to_tokens(ids), spans):
            if token in _spec().special_token_defaults.values():
                assert (start, end) == (0, 0), f"special token {token} has span {(start, end)}"
            else:
                piece = token[2:] if token.startswith("##") else token
                assert text[start:end].lower() == piece, f"{token!r} has span {(start, end)}: {text[start:end]!r}"


def _check_length(tok, texts, encoded, asked):
    assert asked["length"] == [len(ids) for ids in encoded["input_ids"]]
    single = tok(texts[0], return_length=True)
    assert single["length"] == [len(single["input_ids"])], "a single input's length must stay a list"


def _check_overflow(tok, texts, encoded, asked):
    """Every row fits max_length; the rows of each input, overlapping by `stride` tokens, rebuild its
    untruncated tokens; overflow_to_sample_mapping names each row's input."""
    mapping = asked["overflow_to_sample_mapping"]
    assert len(mapping) == len(asked["input_ids"]) > len(texts) and sorted(mapping) == mapping
    assert all(len(row) <= _OVERFLOW["max_length"] for row in asked["input_ids"])
    stride = _OVERFLOW["stride"]
    for index, text in enumerate(texts):
        windows = [row[1:-1] for row, source in zip(asked["input_ids"], mapping) if source == index]
        rebuilt = windows[0] + [t for w in windows[1:] for t in w[stride:]]
        assert rebuilt == tok(text, add_special_tokens=False)["input_ids"], f"windows {windows} of {text!r}"
    assert len(encoded["input_ids"]) == len(texts), "without the flag the truncated-away tokens are dropped"


_CONTENT_CHECKS = {"special_tokens_mask": _check_special_tokens_mask, "offset_mapping": _check_offset_mapping,
                   "length": _check_length, "overflow_to_sample_mapping": _check_overflow}


def _optional_params():
    from spec import load_spec

    optional = load_spec().tokenizer.outputs["optional"]
    return [pytest.param(key, flag, id=flag, marks=pytest.mark.clause(f"tokenizer.call.default.{flag}",
                                                                      f"tokenizer.output.{key}"))
            for key, flag in optional.items()]


@pytest.mark.parametrize("key,flag", _optional_params())
def test_optional_output_only_when_asked(key, flag):
    """Omitting return_<x> equals passing its spec default (no `key` in the output); passing True adds
    `key` with the content tokenizer.yaml describes and leaves the other keys as they were."""
    tok = _golden_tokenizer()
    base = _OVERFLOW if key == "overflow_to_sample_mapping" else {}
    omitted = tok(_TEXTS, **base)
    explicit = tok(_TEXTS, **base, **{flag: _spec().call_defaults[flag]})
    assert dict(explicit) == dict(omitted), f"{flag}={_spec().call_defaults[flag]!r} differs from omitting it"
    assert key not in omitted, f"{key} returned although {flag} was omitted"
    asked = tok(_TEXTS, **base, **{flag: True})
    assert key in asked, f"{flag}=True returned no {key}: {sorted(asked)}"
    if key != "overflow_to_sample_mapping":
        assert {k: v for k, v in asked.items() if k != key} == dict(omitted), f"{flag}=True changed other keys"
    _CONTENT_CHECKS[key](tok, _TEXTS, omitted, asked)


@pytest.mark.clause("tokenizer.decision.unbounded_truncation", "tokenizer.option.model_max_length")
def test_truncation_without_a_bound_keeps_everything():
    tok = _golden_tokenizer()
    assert tok.model_max_length == _spec().unbounded_model_max_length
    words = ["word"] * 40
    assert tok(" ".join(words), truncation=True)["input_ids"] == tok(" ".join(words))["input_ids"]
    assert len(tok(" ".join(words), truncation=True)["input_ids"]) == len(words) + 2


@pytest.mark.clause("tokenizer.file.model_config", "tokenizer.error.unsupported_tokenizer")
def test_auto_tokenizer_reads_model_type_from_config_json(tmp_path):
    """Without tokenizer_class in tokenizer_config.json, AutoTokenizer reads config.json's model_type:
    each accepted type loads the tokenizer (same ids), any other type is tokenizer.error.unsupported_tokenizer."""
    import json

    from conformance.golden.tokenizer.check import golden_vocab

    tok = _golden_tokenizer()
    _, auto_class = _classes()
    config_name = _spec().filename("model_config")
    for model_type in [*_spec().accepted_model_types, "t5"]:
        directory = tmp_path / model_type
        directory.mkdir()
        (directory / _spec().filename("vocab")).write_bytes(golden_vocab().read_bytes())
        (directory / _spec().filename("config")).write_text(json.dumps({"do_lower_case": True}))
        (directory / config_name).write_text(json.dumps({"model_type": model_type}))
        if model_type in _spec().accepted_model_types:
            assert auto_class.from_pretrained(directory)(_TEXTS) == tok(_TEXTS), f"model_type {model_type}"
            continue
        with pytest.raises(ValueError, match=model_type):
            auto_class.from_pretrained(directory)
