"""Per-test time limit (``--conformance-test-timeout``): a test whose adapter blocks is stopped, recorded
as failed under the clauses it declared, and the run goes on and writes its report.

The limit is a POSIX interval timer (SIGALRM) around the test call, which interrupts Python code and
the blocking system calls that return to the interpreter (sleep, I/O, locks, waits). Code that never
returns to the interpreter (a C loop that holds the GIL) is beyond any in-process limit; the CLI stops
such a process from outside (``electra-conformance run``: SIGINT past the deadline, then SIGKILL).
Where there is no SIGALRM (Windows) or the test does not run on the main thread, no limit applies.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class TestTimeout(BaseException):
    """Raised in a test that ran past its limit. A BaseException, so that hypothesis does not treat it
    as a falsifying example and run the blocked call again while shrinking."""

    __test__ = False  # not a test class, whatever pytest's collection rules say


def can_limit() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise TestTimeout in the block once it has run ``seconds`` (None or 0: no limit)."""
    if not seconds or not can_limit():
        yield
        return

    def expire(signum, frame):
        raise TestTimeout(f"{what} ran past its time limit of {seconds:g} s (--conformance-test-timeout) and "
                          f"was stopped; the adapter call it was in did not return")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
