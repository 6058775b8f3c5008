"""Hostile configs and config/tokenizer files (issue 14, items 10-12): non-finite floats, absurd sizes,
config.json that is not a JSON object or holds keys that would break ElectraConfig, broken tokenizer
files. Each must end in a ValueError naming the field, key or file, never in a hang, an allocator
failure or a Python error from inside the class. No model larger than a tiny one is ever built."""
from __future__ import annotations

import json
import math
import time

import pytest

from electra_core import limits
from electra_core.config import ElectraConfig
from electra_core.tokenizer import AutoTokenizer

TINY = dict(vocab_size=32, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=20, max_position_embeddings=16)


# -- item 11: non-finite floats (error.config.non_finite) ---------------------------------------
NON_FINITE = [("layer_norm_eps", math.nan), ("initializer_range", math.inf), ("initializer_range", math.nan),
              ("hidden_dropout_prob", math.nan), ("attention_probs_dropout_prob", -math.inf),
              ("classifier_dropout", math.nan), ("summary_last_dropout", math.nan), ("layer_norm_eps", math.inf)]


@pytest.mark.parametrize("field,value", NON_FINITE)
def test_non_finite_float_is_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"{field}.*finite.*{value}"):
        ElectraConfig(**{field: value})


def test_non_finite_float_in_config_json_names_file_and_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"layer_norm_eps": NaN}')  # Python's json accepts NaN, as transformers' files may hold it
    with pytest.raises(ValueError, match=r"config\.json.*layer_norm_eps.*finite"):
        ElectraConfig.from_json_file(path)


# -- item 10: absurd sizes (error.config.too_large) ------------------------------------------------
ABSURD = [("num_hidden_layers", 10**6, {}), ("vocab_size", 10**12, {}),
          ("hidden_size", 10**9, {"num_attention_heads": 1}), ("max_position_embeddings", 10**10, {})]


@pytest.mark.parametrize("field,value,extra", ABSURD, ids=[a[0] for a in ABSURD])
def test_absurd_size_is_refused_quickly_naming_field_and_size(field, value, extra):
    config = ElectraConfig(**{field: value}, **extra)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"{field}={value}.*TiB.*over the limit of 16\.0 GiB") as info:
        limits.check_parameter_memory("FlaxElectraForMaskedLM", config)
    assert time.perf_counter() - start < 1.0
    assert limits.ENV_VAR in str(info.value)


def test_limit_is_settable_by_environment_and_module_setting(monkeypatch):
    config = ElectraConfig(**TINY)
    size = limits.parameter_bytes("TFElectraModel", config)
    limits.check_parameter_memory("TFElectraModel", config)  # far below the default
    monkeypatch.setenv(limits.ENV_VAR, str(size - 1))
    with pytest.raises(ValueError, match="over the limit"):
        limits.check_parameter_memory("TFElectraModel", config)
    monkeypatch.setenv(limits.ENV_VAR, str(size))
    limits.check_parameter_memory("TFElectraModel", config)  # exactly at the limit is allowed
    monkeypatch.setattr(limits, "MAX_PARAMETER_BYTES", size - 1)  # the module setting wins
    with pytest.raises(ValueError, match="over the limit"):
        limits.check_parameter_memory("TFElectraModel", config)
    monkeypatch.setattr(limits, "MAX_PARAMETER_BYTES", None)
    monkeypatch.setenv(limits.ENV_VAR, "lots")
    with pytest.raises(ValueError, match=limits.ENV_VAR):
        limits.check_parameter_memory("TFElectraModel", config)


def test_estimate_counts_every_parameter_of_params_yaml():
    from electra_core.checkpoint.param_spec import expected_shapes

    config = ElectraConfig(**dict(TINY, num_hidden_layers=3, tie_word_embeddings=False))
    for class_name in ("FlaxElectraForMaskedLM", "TFElectraForMultipleChoice", "TFElectraModel"):
        count = sum(math.prod(s) for s in expected_shapes(class_name, config).values())
        assert limits.parameter_bytes(class_name, config) == 4 * count, class_name


@pytest.mark.parametrize("framework", ["flax", "tf"])
def test_constructors_refuse_before_building(framework, monkeypatch):
    """A 10**6-layer config is refused by both constructors at once (it used to hang)."""
    if framework == "flax":
        from impl_flax import FlaxElectraForSequenceClassification as cls
    else:
        from impl_tf import TFElectraForSequenceClassification as cls
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"num_hidden_layers=1000000"):
        cls(ElectraConfig(num_hidden_layers=10**6))
    with pytest.raises(ValueError, match=r"vocab_size=1000000000000"):
        cls(ElectraConfig(vocab_size=10**12))
    assert time.perf_counter() - start < 5.0
    monkeypatch.setenv(limits.ENV_VAR, "64")
    with pytest.raises(ValueError, match="over the limit"):
        cls(ElectraConfig(**TINY))


# -- item 12: config.json that is not a usable JSON object (error.config.file) -----------------------
BAD_FILES = {
    "empty": (b"", "is empty"),
    "whitespace": (b"  \n", "is empty"),
    "binary": (b"\x89HDF\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
    "truncated": (b'{"hidden_size": 16, "num_', "not valid JSON"),
    "list": (b"[1, 2, 3]", "JSON object, got a list"),
    "string": (b'"electra"', "JSON object, got a str"),
    "number": (b"3", "JSON object, got a int"),
    "null": (b"null", "JSON object, got a NoneType"),
    "deep": (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_unreadable_config_json_names_the_file(tmp_path, name):
    content, words = BAD_FILES[name]
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=words) as info:
        ElectraConfig.from_json_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=words) as info:
        ElectraConfig.from_pretrained(tmp_path)
    assert str(path) in str(info.value)


BAD_KEYS = {
    "id2label_list": ({"id2label": ["neg", "pos"]}, "id2label"),
    "id2label_word_key": ({"id2label": {"zero": "neg"}}, "id2label key 'zero'"),
    "id2label_float_key": ({"id2label": {"0.5": "neg"}}, "id2label key '0.5'"),
    "id2label_value": ({"id2label": {"0": ["neg"]}}, r"id2label\['0'\]"),
    "validate": ({"validate": 1}, "'validate' is reserved"),
    "head_dim": ({"head_dim": 8}, "'head_dim' is reserved"),
    "use_return_dict": ({"use_return_dict": False}, "'use_return_dict' is reserved"),
    "label2id_ok_num_labels": ({"num_labels": "3"}, "num_labels"),
    "dunder_class": ({"__class__": 1}, "'__class__' is reserved"),
    "dunder_dict": ({"__dict__": {}}, "'__dict__' is reserved"),
    "private": ({"_extra": {}}, "'_extra' is reserved"),
    "to_dict": ({"to_dict": 3}, "'to_dict' is reserved"),
    "wrong_type": ({"hidden_size": "16"}, "hidden_size"),
    "model_type": ({"model_type": "bert"}, "model_type"),  # sorts before "electra"
    "model_type_after": ({"model_type": "roberta"}, "model_type"),  # and after it
}


@pytest.mark.parametrize("name", sorted(BAD_KEYS))
def test_bad_key_in_config_json_names_file_and_key(tmp_path, name):
    entries, words = BAD_KEYS[name]
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, **entries}))
    with pytest.raises(ValueError, match=words) as info:
        ElectraConfig.from_json_file(path)
    assert str(path) in str(info.value)


def test_unknown_harmless_keys_are_still_kept(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, "architectures": ["ElectraForMaskedLM"], "my_note": "x",
                                "id2label": {"0": "neg", "1": "pos"}}))
    config = ElectraConfig.from_json_file(path)
    assert config.my_note == "x" and config.to_dict()["architectures"] == ["ElectraForMaskedLM"]
    assert config.id2label == {0: "neg", 1: "pos"}


# -- item 12: tokenizer files ------------------------------------------------------------------------
VOCAB = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n"


def _tokenizer_json(tmp_path) -> str:
    from electra_core.tokenizer import ElectraTokenizerFast

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "vocab.txt").write_text(VOCAB)
    ElectraTokenizerFast.from_pretrained(tmp_path / "v").save_pretrained(tmp_path / "full")
    return (tmp_path / "full" / "tokenizer.json").read_text()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "binary", "list", "not_a_tokenizer"])
def test_broken_tokenizer_json_names_the_file(tmp_path, kind):
    text = _tokenizer_json(tmp_path)
    content = {"truncated": text[: len(text) // 2].encode(), "garbage": b"not json at all {",
               "binary": b"\xff\xfe\x00\x01" * 8, "list": b"[]",
               "not_a_tokenizer": json.dumps({"model": {"type": "WordPiece", "vocab": 3}}).encode()}[kind]
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(content)
    with pytest.raises(ValueError) as info:
        AutoTokenizer.from_pretrained(folder)
    assert "tokenizer.json" in str(info.value)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01\x89PNG", b"[PAD]\n\x00\x00\n[UNK]\n"], ids=["binary", "nul"])
def test_binary_vocab_txt_names_the_file(tmp_path, content):
    (tmp_path / "vocab.txt").write_bytes(content)
    with pytest.raises(ValueError) as info:
        AutoTokenizer.from_pretrained(tmp_path)
    assert "vocab.txt" in str(info.value)
