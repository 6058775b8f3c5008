"""ElectraTokenizerFast: WordPiece tokenisation (spec ``tokenizer.yaml``) on the `tokenizers` package.

    tok = ElectraTokenizerFast.from_pretrained("org/name")        # or a directory, or vocab_file=...
    inputs = tok("question", "context", return_tensors="np")      # input_ids / token_type_ids / attention_mask
    tok.decode(inputs["input_ids"][0], skip_special_tokens=True)

Shape keys: B batch, S sequence.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np
from tokenizers import Tokenizer

from electra_core.tokenizer import files, pipeline
from electra_core.tokenizer._spec import tokenizer_spec
from electra_core.tokenizer.batch_encoding import BatchEncoding
from electra_core.tokenizer.encode import encode_rows
from electra_core.tokenizer.strategies import plan


def _check_option(name: str, value: Any) -> Any:
    option = tokenizer_spec().option(name)
    kinds = {"bool": (bool,), "int": (int,), "str": (str,)}[option.type]
    ok = (value is None and option.nullable) or (
        isinstance(value, kinds) and not (option.type == "int" and isinstance(value, bool)))
    if ok and value is not None and option.minimum is not None and value < option.minimum:
        ok = False
    if ok and value is not None and option.choices is not None and value not in option.choices:
        ok = False
    if not ok:
        allowed = list(option.choices) if option.choices else option.type + (" or None" if option.nullable else "")
        raise ValueError(f"tokenizer option {name}={value!r} is invalid; expected {allowed}")
    return value


class ElectraTokenizerFast:
    """ELECTRA's WordPiece tokenizer. Options and special tokens as in the spec (keyword arguments
    override the files); ``vocab_file`` or ``tokenizer_file`` (or ``tokenizer_object``) gives the vocabulary."""

    def __init__(self, vocab_file: str | os.PathLike | None = None, tokenizer_file: str | os.PathLike | None = None,
                 *, tokenizer_object: Tokenizer | None = None, name_or_path: str = "", **kwargs: Any):
        spec = tokenizer_spec()
        special = dict(spec.special_token_defaults)
        special.update({k: kwargs.pop(k) for k in list(kwargs) if k in special})
        options = dict(spec.option_defaults)
        options.update({k: kwargs.pop(k) for k in list(kwargs) if k in options})
        if kwargs:
            raise TypeError(f"ElectraTokenizerFast got unexpected arguments {sorted(kwargs)}")
        for name, value in options.items():
            _check_option(name, value)
        for role, token in special.items():
            if not isinstance(token, str) or not token:
                raise ValueError(f"special token {role} must be a non-empty string, got {token!r}")
        if tokenizer_object is not None:
            backend = pipeline.configure(Tokenizer.from_str(tokenizer_object.to_str()), options, special)
        elif tokenizer_file is not None:
            backend = pipeline.from_tokenizer_json(tokenizer_file, options, special)
        elif vocab_file is not None:
            backend = pipeline.from_vocab(pipeline.read_vocab_file(vocab_file), options, special)
        else:
            raise ValueError("ElectraTokenizerFast needs vocab_file, tokenizer_file or tokenizer_object")
        self._backend = backend
        self._options = options
        self._special = special
        self.name_or_path = str(name_or_path)

    # -- loading and saving ----------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> "ElectraTokenizerFast":
        """Load from a directory or a hub id (huggingface_hub; offline with HF_HUB_OFFLINE=1 and a cache).
        Hub keyword arguments: revision, cache_dir, local_files_only, token; others are options."""
        hub = {k: kwargs.pop(k) for k in files.HUB_KWARGS if k in kwargs}
        found = files.locate(name_or_path, **hub)
        return cls._from_files(found, kwargs)

    @classmethod
    def _from_files(cls, found: "files.TokenizerFiles", overrides: dict) -> "ElectraTokenizerFast":
        config = found.read_json("config")
        settings = {**files.options_from(config),
                    **files.special_tokens_from(config, found.read_json("special_tokens_map")), **overrides}
        return cls(vocab_file=found["vocab"], tokenizer_file=found["tokenizer"], name_or_path=found.source,
                   **settings)

    def save_pretrained(self, save_directory: str | os.PathLike, **_: Any) -> tuple[str, ...]:
        """Write vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json (atomically)."""
        spec = tokenizer_spec()
        vocab = sorted(self._backend.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1])
        if [i for _, i in vocab] != list(range(len(vocab))):
            raise ValueError("cannot write vocab.txt: the vocabulary ids are not contiguous from 0")
        config = {**self._options, **self._special, "tokenizer_class": spec.saved_tokenizer_class,
                  "model_max_length": self.model_max_length}
        contents = {
            "vocab": "".join(token + "\n" for token, _ in vocab),
            "tokenizer": pipeline.to_json(self._backend),
            "config": json.dumps(config, indent=2, ensure_ascii=False),
            "special_tokens_map": json.dumps(self._special, indent=2, ensure_ascii=False),
        }
        return files.write(save_directory, contents)

    # -- encoding --------------------------------------------------------------------------------
    def __call__(self, text=None, text_pair=None, *, add_special_tokens: bool = True, padding=False,
                 truncation=None, max_length: int | None = None, stride: int = 0,
                 is_split_into_words: bool = False, pad_to_multiple_of: int | None = None,
                 return_tensors: str | None = None, return_token_type_ids: bool | None = None,
                 return_attention_mask: bool | None = None, return_overflowing_tokens: bool = False,
                 return_special_tokens_mask: bool = False, return_offsets_mapping: bool = False,
                 return_length: bool = False, **unknown: Any) -> BatchEncoding:
        """Encode one text, a pair, or a batch (lists) of texts / pairs.

        Returns input_ids, token_type_ids, attention_mask (+ the keys the return_* flags ask for):
        flat lists for one input, (B, S) rows for a batch, tensors of (B, S) with ``return_tensors``.
        """
        if unknown:
            raise TypeError(f"tokenizer call got unexpected arguments {sorted(unknown)}")
        how = plan(padding=padding, truncation=truncation, max_length=max_length,
                   pad_to_multiple_of=pad_to_multiple_of, stride=stride, return_tensors=return_tensors,
                   model_max_length=self._options["model_max_length"])
        wanted = {"token_type_ids": return_token_type_ids, "attention_mask": return_attention_mask}
        flags = dict(special_tokens_mask=return_special_tokens_mask, offset_mapping=return_offsets_mapping,
                     length=return_length, overflow_to_sample_mapping=return_overflowing_tokens)
        return encode_rows(self, text, text_pair, how, add_special_tokens=add_special_tokens,
                           is_split_into_words=is_split_into_words, wanted=wanted, flags=flags)

    def encode(self, text, text_pair=None, **kwargs: Any) -> list[int]:
        """input_ids of one text (or pair) as a list."""
        return list(self(text, text_pair, **kwargs)["input_ids"])

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """Token strings of ``text`` (and ``pair``), without special tokens unless asked."""
        return list(self._backend.encode(text, pair, add_special_tokens=add_special_tokens).tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._backend.num_special_tokens_to_add(pair)

    # -- ids <-> tokens <-> text -----------------------------------------------------------------
    def _ids(self, ids) -> list[int]:
        """Ids from an int, a sequence, or a 1-D array/tensor of any framework, checked to be in range."""
        array = np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids)
        if array.ndim > 1:
            raise ValueError(f"expected one sequence of ids (S,), got shape {array.shape}; use batch_decode for (B, S)")
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"token ids must be integers, got dtype {array.dtype}")
        flat = [int(i) for i in array.reshape(-1)]
        size = len(self)
        bad = [i for i in flat if not 0 <= i < size]
        if bad:
            raise ValueError(f"token id {bad[0]} is out of range [0, {size}) (vocab_size {size})")
        return flat

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """One id -> token string; a sequence of ids -> list of token strings."""
        single = isinstance(ids, (int, np.integer))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = [self._backend.id_to_token(i) for i in self._ids(ids) if i not in special]
        return tokens[0] if single else tokens

    def convert_tokens_to_ids(self, tokens):
        """One token -> id; a list of tokens -> ids. Tokens outside the vocabulary map to unk_token_id."""
        if isinstance(tokens, str):
            found = self._backend.token_to_id(tokens)
            return self.unk_token_id if found is None else found
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        return self._backend.decoder.decode(list(tokens))

    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None, **_: Any) -> str:
        """Text of one sequence of ids (S,)."""
        text = self._backend.decode(self._ids(token_ids), skip_special_tokens=skip_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self._options["clean_up_tokenization_spaces"]
        if clean_up_tokenization_spaces:
            for rule in tokenizer_spec().decode_cleanup:
                text = text.replace(rule["from"], rule["to"])
        return text

    def batch_decode(self, sequences, **kwargs: Any) -> list[str]:
        """Texts of a batch of id sequences (B, S) (lists of different lengths allowed)."""
        if hasattr(sequences, "numpy"):
            sequences = sequences.numpy()
        return [self.decode(seq, **kwargs) for seq in sequences]

    # -- vocabulary and special tokens -----------------------------------------------------------
    @property
    def backend_tokenizer(self) -> Tokenizer:
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens)."""
        return self._backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    vocab = property(get_vocab)

    @property
    def model_max_length(self) -> int:
        limit = self._options["model_max_length"]
        return tokenizer_spec().unbounded_model_max_length if limit is None else limit

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return dict(self._special)

    @property
    def all_special_tokens(self) -> list[str]:
        return list(dict.fromkeys(self._special.values()))

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def model_input_names(self) -> list[str]:
        return list(tokenizer_spec().outputs["model_input_names"])

    def __getattr__(self, name: str) -> Any:
        # unk_token, pad_token, ... / unk_token_id, ... / do_lower_case, padding_side, ...
        special = self.__dict__.get("_special", {})
        options = self.__dict__.get("_options", {})
        if name in special:
            return special[name]
        if name.endswith("_id") and name[:-3] in special:
            return self.convert_tokens_to_ids(special[name[:-3]])
        if name in options:
            return options[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, do_lower_case={self._options['do_lower_case']}, "
                f"special_tokens={self._special})")
