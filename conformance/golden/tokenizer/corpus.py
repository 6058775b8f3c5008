"""The tokenizer golden corpus: hard strings, option sets and call variants (data only, no tokenizer).

``generate.py`` runs the reference ElectraTokenizerFast on these and stores what it returned.
Each case names the spec clauses it exercises (``tokenizer.*`` ids of spec/data/tokenizer.yaml).
"""
from __future__ import annotations

TEXTS = {
    "plain": "Hello, my dog is cute",
    "question": "Who was Jim Henson?",
    "accents": "Héllo Wörld! Ça va? naïve café résumé Ångström Dvořák",
    "decomposed_accents": "e\u0301te\u0301 a\u0308pfel n\u0303",
    "cjk_chinese": "我爱北京天安门",
    "cjk_mixed": "ELECTRA模型很好用, 日本語のテキスト",
    "hangul": "한국어 문장입니다",
    "emoji": "I love 🤗 and 👍🏽 ❤️ 🇫🇷!",
    "control_chars": "tab\there\nnew line\r\x00null\x07bell \u200bzero\ufeffwidth soft\u00adhyphen",
    "punctuation_runs": "Wait...!!! ???,,, --- (((nested))) [brackets] {braces} @#$%^&*~`|\\/",
    "long_word_101": "a" * 101,
    "long_word_100": "b" * 100,
    "long_word_mixed": "supercalifragilisticexpialidocious" * 4 + " short",
    "empty": "",
    "whitespace_only": "   \t\n  \u3000 ",
    "mixed_case": "ThE QuIcK BrOwN FoX jumps over McDonald's iPhone",
    "numbers": "3.14159 1,000,000 2024-01-01 $5.00 50%",
    "special_tokens_inline": "[MASK] is [SEP] [CLS] [UNK] [PAD] [mask] [Mask]",
    "contractions": "don't can't I'm you're they've it's",
    "url": "https://example.com/path?q=1&x=2#frag user@mail.org",
    "scripts": "Ελληνικά Русский текст العربية עברית हिन्दी",
    "fullwidth": "ＡＢＣ１２３ ｶﾀｶﾅ",
    "math": "∑∫√∞ ≤ ≥ ± × ÷ ∂x/∂y",
}

# tokenizer options (constructor keyword arguments) under which the whole TEXTS corpus is encoded
OPTION_SETS = {
    "default": {},
    "cased": {"do_lower_case": False},
    "lower_keep_accents": {"do_lower_case": True, "strip_accents": False},
    "cased_strip_accents": {"do_lower_case": False, "strip_accents": True},
    "no_chinese_split": {"tokenize_chinese_chars": False},
}
OPTION_CLAUSES = {
    "default": ("tokenizer.option.do_lower_case", "tokenizer.option.strip_accents",
                "tokenizer.option.tokenize_chinese_chars"),
    "cased": ("tokenizer.option.do_lower_case",),
    "lower_keep_accents": ("tokenizer.option.strip_accents",),
    "cased_strip_accents": ("tokenizer.option.strip_accents", "tokenizer.option.do_lower_case"),
    "no_chinese_split": ("tokenizer.option.tokenize_chinese_chars",),
}
PIPELINE_CLAUSES = ("tokenizer.pipeline.normalizer", "tokenizer.pipeline.pre_tokenizer", "tokenizer.pipeline.model",
                    "tokenizer.pipeline.post_processor", "tokenizer.special_token.unk_token")

LONG_A = "the quick brown fox jumps over the lazy dog and keeps running far away"
LONG_B = "a completely different second sentence that is also rather long indeed"
SHORT = "short one"
PAIRS = {"long_short": (LONG_A, SHORT), "short_long": (SHORT, LONG_B), "long_long": (LONG_A, LONG_B),
         "qa": ("Who was Jim Henson?", "Jim Henson was a nice puppet")}
TRUNCATIONS = ("longest_first", "only_first", "only_second", True)
MAX_LENGTHS = (5, 8, 12, 16)

BATCH = ["Hello, my dog is cute", "short", "", "a b c d e f g h i j k l m n o p q r s t"]
PADDINGS = (True, "longest", "max_length", False, "do_not_pad")


def _clause_of(kind: str, value) -> str:
    table = {"padding": {True: "longest", False: "do_not_pad"}, "truncation": {True: "longest_first"}}
    return f"tokenizer.strategy.{kind}.{table.get(kind, {}).get(value, value)}"


def call_cases() -> list[dict]:
    """Every case: id, options, method ('call' | 'decode' | 'tokenize'), args, kwargs, clauses."""
    cases = []
    for oname, options in OPTION_SETS.items():
        for tname, text in TEXTS.items():
            cases.append(dict(id=f"text.{oname}.{tname}", options=options, method="call", args=[text], kwargs={},
                              clauses=[*PIPELINE_CLAUSES, *OPTION_CLAUSES[oname]]))
            cases.append(dict(id=f"tokenize.{oname}.{tname}", options=options, method="tokenize", args=[text],
                              kwargs={}, clauses=[*PIPELINE_CLAUSES, *OPTION_CLAUSES[oname]]))
    for pname, (a, b) in PAIRS.items():
        cases.append(dict(id=f"pair.{pname}", options={}, method="call", args=[a, b], kwargs={},
                          clauses=["tokenizer.pipeline.post_processor", "tokenizer.output.token_type_ids"]))
        for strategy in TRUNCATIONS:
            for max_length in MAX_LENGTHS:
                cases.append(dict(
                    id=f"truncate.{pname}.{strategy}.{max_length}", options={}, method="call", args=[a, b],
                    kwargs=dict(truncation=strategy, max_length=max_length),
                    clauses=[_clause_of("truncation", strategy), "tokenizer.call.default.max_length"]))
    cases.append(dict(id="pair.batch_of_pairs", options={}, method="call",
                      args=[[["Who was Jim Henson?", "Jim Henson was a nice puppet"], ["a b", "c"]]],
                      kwargs=dict(padding=True), clauses=["tokenizer.pipeline.post_processor"]))
    for strategy in ("longest_first", "only_first"):
        cases.append(dict(id=f"truncate.single.{strategy}", options={}, method="call", args=[LONG_A],
                          kwargs=dict(truncation=strategy, max_length=6),
                          clauses=[_clause_of("truncation", strategy)]))
    cases.append(dict(id="truncate.single.only_second", options={}, method="call", args=[LONG_A],
                      kwargs=dict(truncation="only_second", max_length=6),
                      clauses=["tokenizer.strategy.truncation.only_second", "tokenizer.error.truncation_impossible"]))
    cases.append(dict(id="truncate.max_length_alone", options={}, method="call", args=[LONG_A, LONG_B],
                      kwargs=dict(max_length=10), clauses=["tokenizer.call.default.truncation"]))
    cases.append(dict(id="truncate.left_side", options={"truncation_side": "left"}, method="call",
                      args=[LONG_A], kwargs=dict(truncation=True, max_length=7),
                      clauses=["tokenizer.option.truncation_side"]))
    for padding in PADDINGS:
        for multiple in (None, 8):
            kwargs = dict(padding=padding, pad_to_multiple_of=multiple)
            if padding == "max_length":
                kwargs["max_length"] = 16
            cases.append(dict(id=f"pad.{padding}.{multiple}", options={}, method="call", args=[BATCH],
                              kwargs=kwargs, clauses=[_clause_of("padding", padding),
                                                      "tokenizer.call.default.pad_to_multiple_of"]))
    cases.append(dict(id="pad.truncate.batch_pairs", options={}, method="call",
                      args=[[LONG_A, SHORT, "x"], [SHORT, LONG_B, "y z"]],
                      kwargs=dict(padding="max_length", truncation=True, max_length=12),
                      clauses=["tokenizer.strategy.padding.max_length", "tokenizer.strategy.truncation.longest_first"]))
    cases.append(dict(id="pad.left_side", options={"padding_side": "left"}, method="call", args=[BATCH],
                      kwargs=dict(padding=True), clauses=["tokenizer.option.padding_side"]))
    cases.append(dict(id="pad.default_is_none", options={}, method="call", args=[BATCH], kwargs={},
                      clauses=["tokenizer.call.default.padding"]))
    flags = dict(return_special_tokens_mask=True, return_offsets_mapping=True, return_length=True)
    cases.append(dict(id="flags.optional_keys", options={}, method="call", args=["Héllo, 世界! don't", "pair"],
                      kwargs=flags, clauses=[f"tokenizer.output.{k}" for k in
                                             ("special_tokens_mask", "offset_mapping", "length")]))
    cases.append(dict(id="flags.no_type_ids_no_mask", options={}, method="call", args=["a b", "c"],
                      kwargs=dict(return_token_type_ids=False, return_attention_mask=False),
                      clauses=["tokenizer.call.default.return_token_type_ids",
                               "tokenizer.call.default.return_attention_mask"]))
    cases.append(dict(id="flags.no_special_tokens", options={}, method="call", args=[["Hello world", "x"]],
                      kwargs=dict(add_special_tokens=False), clauses=["tokenizer.call.default.add_special_tokens"]))
    cases.append(dict(id="flags.split_into_words", options={}, method="call",
                      args=[[["Hello", "wörld", "[MASK]"], ["中文", "x"]]], kwargs=dict(is_split_into_words=True),
                      clauses=["tokenizer.call.default.is_split_into_words"]))
    cases.append(dict(id="flags.overflow_stride", options={}, method="call", args=[[LONG_A, SHORT]],
                      kwargs=dict(truncation=True, max_length=8, stride=2, return_overflowing_tokens=True,
                                  padding=True),
                      clauses=["tokenizer.call.default.stride", "tokenizer.output.overflow_to_sample_mapping"]))
    ids = [101, 2040, 2001, 3958, 27227, 1029, 102, 3958, 27227, 2001, 1037, 3835, 13997, 102, 0, 0]
    apostrophes = [101, 2123, 1005, 1056, 1045, 1005, 1049, 2009, 1005, 1055, 1012, 1029, 999, 1010, 102]
    for seq_name, seq in (("qa", ids), ("apostrophes", apostrophes)):
        for skip in (False, True):
            for cleanup in (None, False, True):
                cases.append(dict(id=f"decode.{seq_name}.skip_{skip}.cleanup_{cleanup}", options={}, method="decode",
                                  args=[seq], kwargs=dict(skip_special_tokens=skip,
                                                          clean_up_tokenization_spaces=cleanup),
                                  clauses=["tokenizer.pipeline.decoder", "tokenizer.decode.cleanup",
                                           "tokenizer.option.clean_up_tokenization_spaces"]))
    for case in cases:
        case["kwargs"] = {k: v for k, v in case["kwargs"].items() if v is not None}
    return cases
