"""Turn the padding / truncation / max_length / return_tensors call arguments into a plan, following the
spec's ``call`` section; bad values raise the spec's tokenizer.error.* clauses."""
from __future__ import annotations

from dataclasses import dataclass

from electra_core.tokenizer._spec import tokenizer_spec


@dataclass(frozen=True)
class EncodingPlan:
    padding: str  # longest | max_length | do_not_pad
    truncation: str  # longest_first | only_first | only_second | do_not_truncate
    max_length: int | None
    pad_to_multiple_of: int | None
    stride: int
    return_tensors: str | None


def _spelling(value) -> str | None:
    """The spec's key for a padding / truncation argument value (bools and None as YAML spells them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    # enum-like objects (e.g. transformers' PaddingStrategy) carry the string as .value
    inner = getattr(value, "value", None)
    return inner if isinstance(inner, str) else None


def _strategy(kind: str, value) -> str:
    table = tokenizer_spec().call[f"{kind}_values"]
    key = _spelling(value)
    if key not in table:
        choices = sorted({k for k in table if k not in ("true", "false", "null")})
        raise ValueError(f"{kind}={value!r} is not a valid {kind} strategy; use True, False or one of {choices}")
    return table[key]


def _positive_int(name: str, value, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def plan(*, padding, truncation, max_length, pad_to_multiple_of, stride, return_tensors,
         model_max_length: int | None) -> EncodingPlan:
    """Resolve the arguments of one call. ``model_max_length`` None means unbounded."""
    call = tokenizer_spec().call
    if max_length is not None:
        _positive_int("max_length", max_length)
    if pad_to_multiple_of is not None:
        _positive_int("pad_to_multiple_of", pad_to_multiple_of)
    _positive_int("stride", stride, allow_zero=True)
    if return_tensors is not None and _spelling(return_tensors) not in call["return_tensors_values"]:
        raise ValueError(f"return_tensors={return_tensors!r} is not supported; use None or one of "
                         f"{list(call['return_tensors_values'])}")
    if max_length is not None and padding is False and truncation is None:
        truncation = call["max_length_alone_truncates_with"]
    pad = _strategy("padding", padding)
    trunc = _strategy("truncation", truncation)
    if max_length is None:
        if pad == "max_length":
            if model_max_length is None:
                raise ValueError("padding='max_length' needs max_length: this tokenizer has no model_max_length "
                                 "to fall back on")
            max_length = model_max_length
        if trunc != "do_not_truncate":
            if model_max_length is None:
                trunc = "do_not_truncate"  # nothing to truncate to (tokenizer.decision.unbounded_truncation)
            else:
                max_length = model_max_length
    if (trunc != "do_not_truncate" and pad != "do_not_pad" and pad_to_multiple_of is not None
            and max_length is not None and max_length % pad_to_multiple_of):
        raise ValueError(f"truncation and padding are both on, but max_length={max_length} is not a multiple of "
                         f"pad_to_multiple_of={pad_to_multiple_of}")
    _check_padded_length(pad, max_length, pad_to_multiple_of)
    rt = None if return_tensors is None else _spelling(return_tensors)
    return EncodingPlan(pad, trunc, max_length, pad_to_multiple_of, stride, rt)


def _check_padded_length(pad: str, max_length: int | None, pad_to_multiple_of: int | None) -> None:
    """tokenizer.error.padded_length_limit: rows padded longer than the spec's max_padded_length are
    refused before the backend allocates them."""
    limit = tokenizer_spec().max_padded_length
    for name, value in (("max_length", max_length if pad == "max_length" else None),
                        ("pad_to_multiple_of", pad_to_multiple_of if pad != "do_not_pad" else None)):
        if value is not None and value > limit:
            raise ValueError(f"padding to {name}={value} would make rows of {value} tokens, more than the limit "
                             f"of {limit} (max_padded_length); truncate, or pad to a shorter length")
