"""The tokenizer golden corpus: hard strings, option sets, call variants and every other public method
with each of its arguments (data only, no tokenizer).

``generate.py`` runs the reference ElectraTokenizerFast on these and stores what it returned.
Each case names the spec clauses it exercises (``tokenizer.*`` ids of spec/data/tokenizer.yaml). A case
is: id, options (constructor keywords), method ('call', a tokenizer method, or a BatchEncoding method
applied to the call's result with ``result_kwargs``), args, kwargs, clauses; get_vocab cases ``select``
the tokens whose ids are stored.
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
    """Every case of the corpus (see the module's docstring)."""
    cases = []
    for oname, options in OPTION_SETS.items():
        for tname, text in TEXTS.items():
            cases.append(dict(id=f"text.{oname}.{tname}", options=options, method="call", args=[text], kwargs={},
                              clauses=[*PIPELINE_CLAUSES, *OPTION_CLAUSES[oname]]))
            cases.append(dict(id=f"tokenize.{oname}.{tname}", options=options, method="tokenize", args=[text],
                              kwargs={}, clauses=[*PIPELINE_CLAUSES, *OPTION_CLAUSES[oname], "tokenizer.method.tokenize"]))
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
                                           "tokenizer.option.clean_up_tokenization_spaces",
                                           *_method_clauses("decode", dict(skip_special_tokens=skip,
                                                                           clean_up_tokenization_spaces=cleanup))]))
    cases += _option_cases(apostrophes) + _method_cases(ids, apostrophes)
    for case in cases:
        case["kwargs"] = {k: v for k, v in case["kwargs"].items() if v is not None}
    return cases


def _method_clauses(method: str, given: dict) -> list[str]:
    """tokenizer.method.<method>, and tokenizer.method.<method>.<argument> for each argument ``given`` a
    value other than its default (tokenizer.yaml `methods`)."""
    from spec import load_spec

    defaults = load_spec().tokenizer.method_defaults[method]
    return [f"tokenizer.method.{method}", *(f"tokenizer.method.{method}.{k}" for k, v in given.items()
                                            if k in defaults and v != defaults[k])]


def _method_case(case_id: str, method: str, args: list, kwargs: dict | None = None, *, options: dict | None = None,
                 result_kwargs: dict | None = None, clauses: tuple = (), **extra) -> dict:
    given = result_kwargs if result_kwargs is not None else (kwargs or {})
    case = dict(id=f"method.{case_id}", options=options or {}, method=method, args=args, kwargs=kwargs or {},
                clauses=[*_method_clauses(method, given), *clauses], **extra)
    if result_kwargs is not None:
        case["result_kwargs"] = result_kwargs
    return case


def _option_cases(apostrophes: list[int]) -> list[dict]:
    """Options that only show in combination with a call argument: model_max_length bounds truncation and
    padding='max_length' when max_length is omitted; clean_up_tokenization_spaces is decode's default."""
    bounded = {"model_max_length": 8}
    return [
        dict(id="option.model_max_length.truncation", options=bounded, method="call", args=[LONG_A, SHORT],
             kwargs=dict(truncation=True), clauses=["tokenizer.option.model_max_length",
                                                    "tokenizer.strategy.truncation.longest_first"]),
        dict(id="option.model_max_length.padding", options=bounded, method="call", args=[["a b", "c d e f"]],
             kwargs=dict(padding="max_length"), clauses=["tokenizer.option.model_max_length",
                                                         "tokenizer.strategy.padding.max_length"]),
        dict(id="option.no_cleanup.decode", options={"clean_up_tokenization_spaces": False}, method="decode",
             args=[apostrophes], kwargs={}, clauses=["tokenizer.option.clean_up_tokenization_spaces",
                                                     "tokenizer.method.decode"]),
        dict(id="option.no_cleanup.batch_decode", options={"clean_up_tokenization_spaces": False},
             method="batch_decode", args=[[apostrophes]], kwargs={},
             clauses=["tokenizer.option.clean_up_tokenization_spaces", "tokenizer.method.batch_decode"]),
    ]


def _method_cases(ids: list[int], apostrophes: list[int]) -> list[dict]:
    """Every public method besides __call__ (tokenizer.yaml `methods`), with each argument at its default
    and at another value, and each input form (one item or a sequence)."""
    question, answer = PAIRS["qa"]
    pairs = [[question, answer], ["a b", "c"]]
    words = [["Hello", "wörld", "[MASK]"], ["中文", "x", "unaffable"]]
    tokens = ["[CLS]", "hello", "##ing", "world", ",", "don", "'", "t", "notawordzzqx", "[MASK]", "[SEP]"]
    return [
        _method_case("encode.single", "encode", [TEXTS["accents"]]),
        _method_case("encode.text_pair", "encode", [question], dict(text_pair=answer)),
        _method_case("encode.no_special_tokens", "encode", [TEXTS["plain"]], dict(add_special_tokens=False)),
        _method_case("encode.truncated", "encode", [LONG_A, LONG_B], dict(truncation="only_second", max_length=24)),
        _method_case("tokenize.pair", "tokenize", [question], dict(pair=answer)),
        _method_case("tokenize.special_tokens", "tokenize", [TEXTS["plain"]], dict(add_special_tokens=True)),
        _method_case("tokenize.pair_special_tokens", "tokenize", [question], dict(pair=answer, add_special_tokens=True)),
        _method_case("num_special_tokens_to_add.single", "num_special_tokens_to_add", []),
        _method_case("num_special_tokens_to_add.pair", "num_special_tokens_to_add", [], dict(pair=True)),
        _method_case("convert_ids_to_tokens.one", "convert_ids_to_tokens", [27227]),
        _method_case("convert_ids_to_tokens.many", "convert_ids_to_tokens", [ids]),
        _method_case("convert_ids_to_tokens.skip", "convert_ids_to_tokens", [ids], dict(skip_special_tokens=True)),
        _method_case("convert_tokens_to_ids.one", "convert_tokens_to_ids", ["unaffable"]),
        _method_case("convert_tokens_to_ids.many", "convert_tokens_to_ids", [tokens]),
        _method_case("convert_tokens_to_string", "convert_tokens_to_string", [tokens]),
        _method_case("decode.one_id", "decode", [2040]),
        _method_case("batch_decode.default", "batch_decode", [[ids, apostrophes, [101, 102]]]),
        _method_case("batch_decode.skip", "batch_decode", [[ids, apostrophes]], dict(skip_special_tokens=True)),
        _method_case("batch_decode.no_cleanup", "batch_decode", [[ids, apostrophes]],
                     dict(clean_up_tokenization_spaces=False)),
        _method_case("get_vocab", "get_vocab", [], select=["[PAD]", "[UNK]", "[unused0]", "hello", "##ing", "unaffable",
                                                           "[MASK]", "notawordzzqx"]),
        *(_method_case(f"{view}.{name}.{row}", view, [data], dict(padding=True, **call),
                       result_kwargs={} if row is None else {"batch_index": row})
          for view in ("tokens", "word_ids", "sequence_ids")
          for name, data, call in (("pairs", pairs, {}), ("words", words, {"is_split_into_words": True}))
          for row in (None, 1)),
    ]
