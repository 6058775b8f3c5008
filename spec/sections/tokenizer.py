"""tokenizer.yaml: ElectraTokenizerFast / AutoTokenizer clauses (pipeline, options, special tokens,
files, call arguments and defaults, output keys, errors, decisions)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from spec.sections.common import frozen


@dataclass(frozen=True)
class TokenizerOption:
    name: str
    type: str
    default: Any
    doc: str
    nullable: bool = False
    minimum: float | None = None
    choices: tuple | None = None

    @property
    def id(self) -> str:
        return f"tokenizer.option.{self.name}"


@dataclass(frozen=True)
class TokenizerError:
    id: str
    exception: str
    message: tuple[str, ...]
    doc: str


@dataclass(frozen=True)
class TokenizerSpec:
    raw: Mapping[str, Any]  # the whole file, frozen, for the sections without a dataclass
    options: tuple[TokenizerOption, ...]
    errors: tuple[TokenizerError, ...]

    def __getattr__(self, key: str) -> Any:  # class_name, files, pipeline, call, outputs, ...
        try:
            return self.raw[key]
        except KeyError:
            raise AttributeError(f"tokenizer spec has no section {key!r}") from None

    def option(self, name: str) -> TokenizerOption:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(f"tokenizer spec has no option {name!r}")

    def error(self, error_id: str) -> TokenizerError:
        for e in self.errors:
            if e.id == error_id:
                return e
        raise KeyError(f"tokenizer spec has no error {error_id!r}")

    @property
    def option_defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    @property
    def special_token_defaults(self) -> dict[str, str]:
        return {t["name"]: t["default"] for t in self.raw["special_tokens"]}

    @property
    def method_defaults(self) -> dict[str, dict[str, Any]]:
        """method name -> {argument: default} (tokenizer.yaml `methods`)."""
        return {m["name"]: {a["name"]: a["default"] for a in m["arguments"]} for m in self.raw["methods"]}

    @property
    def call_defaults(self) -> dict[str, Any]:
        return {a["name"]: a["default"] for a in self.raw["call"]["arguments"]}

    def filename(self, name: str) -> str:
        for f in self.raw["files"]:
            if f["name"] == name:
                return f["filename"]
        raise KeyError(f"tokenizer spec has no file {name!r}")

    def clause_ids(self) -> tuple[str, ...]:
        """Every clause id this section defines, in file order."""
        r = self.raw
        ids = [f"tokenizer.file.{f['name']}" for f in r["files"]]
        ids += [o.id for o in self.options]
        ids += [f"tokenizer.special_token.{t['name']}" for t in r["special_tokens"]]
        ids += [f"tokenizer.pipeline.{k}" for k in r["pipeline"]]
        ids.append("tokenizer.decode.cleanup")
        ids += [f"tokenizer.call.default.{a['name']}" for a in r["call"]["arguments"]]
        for m in r["methods"]:
            ids += [f"tokenizer.method.{m['name']}", *(f"tokenizer.method.{m['name']}.{a['name']}" for a in m["arguments"])]
        ids += [f"tokenizer.strategy.padding.{k}" for k in r["strategies"]["padding"]]
        ids += [f"tokenizer.strategy.truncation.{k}" for k in r["strategies"]["truncation"]]
        ids += [f"tokenizer.output.{k}" for k in r["outputs"]["model_input_names"]]
        ids += [f"tokenizer.output.{k}" for k in r["outputs"]["optional"]]
        ids += [e.id for e in self.errors] + [d["id"] for d in r["decisions"]]
        return tuple(ids)


def build_tokenizer(raw: dict) -> TokenizerSpec:
    options = []
    for o in raw["options"]:
        o = dict(o)
        if "choices" in o:
            o["choices"] = tuple(o["choices"])
        options.append(TokenizerOption(**o))
    errors = tuple(TokenizerError(e["id"], e["exception"], tuple(e["message"]), e["doc"]) for e in raw["errors"])
    return TokenizerSpec(raw=frozen(raw), options=tuple(options), errors=errors)


__all__ = ["TokenizerSpec", "TokenizerOption", "TokenizerError", "build_tokenizer"]
