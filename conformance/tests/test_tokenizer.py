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
