"""Record monkeypatches so that the self-test can undo them after an in-process pytest run."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

_UNDO: list[tuple[Any, str, Any]] = []


def patch(owner: Any, attribute: str, value: Any) -> None:
    _UNDO.append((owner, attribute, getattr(owner, attribute)))
    setattr(owner, attribute, value)


def undo_all() -> None:
    while _UNDO:
        owner, attribute, old = _UNDO.pop()
        setattr(owner, attribute, old)


def with_arguments(function: Callable, change: Callable[[dict], None]) -> Callable:
    """A wrapper of ``function`` (same signature, so frameworks that inspect it still work) that
    lets ``change`` edit the bound arguments before the call."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        change(bound.arguments)
        return function(*bound.args, **bound.kwargs)

    return wrapper
