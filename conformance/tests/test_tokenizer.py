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


# -- error clauses, files, special tokens, tensors ---------------------------------------------
def _spec():
    from electra_core.tokenizer._spec import tokenizer_spec

    return tokenizer_spec()


def _classes():
    from electra_core.tokenizer import AutoTokenizer, ElectraTokenizerFast

    return ElectraTokenizerFast, AutoTokenizer


def _error_params():
    from spec import load_spec

    return [pytest.param(e.id, id=e.id, marks=pytest.mark.clause(e.id)) for e in load_spec().tokenizer.errors]


@pytest.mark.parametrize("error_id", _error_params())
def test_tokenizer_error_clause(error_id, tmp_path, request):
    from conformance.golden.tokenizer.check import golden_vocab
    from conformance.golden.tokenizer.error_triggers import check_error, error_triggers

    trigger = error_triggers(*_classes(), golden_vocab(), tmp_path)[error_id]
    for decision in trigger.decisions:
        request.node.add_marker(pytest.mark.clause(decision))
    check_error(_spec().error(error_id), trigger)


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
