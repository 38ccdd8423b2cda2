"""Ctrl-C and SIGTERM: stop at the next segment boundary, keep the checkpoint, exit 130 / 143.

    with interruptible():          # the CLI wraps a command in it
        ...                        # the sweep driver calls check(where) between training segments

A signal does not raise inside JAX: it sets a flag. The sweep driver (`theory.engine.sweep`)
looks at the flag after every training segment (a few seconds of compiled steps at most), saves
the run's checkpoint and raises `Interrupted`, which the CLI turns into one line and exit code
128 + signal (130 for SIGINT, 143 for SIGTERM). Work that has no segment boundary (a long
evaluation or a host solver) cannot be stopped cleanly: if the flag is still unanswered after
`GRACE_SECONDS`, or a second signal arrives, the process leaves at once with the same exit code
(the last checkpoint stays on disk; half-written temporary files are removed by the next run, see
`theory.engine.checkpoint.remove_stale_temps`). Leaving through `os._exit` skips the interpreter's
shutdown, in which JAX's runtime can crash when a computation is still queued.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

GRACE_SECONDS = 10.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested: int | None = None
_timer: threading.Timer | None = None


class Interrupted(Exception):
    """Raised at a segment boundary after a signal; `where` says what had been reached."""

    def __init__(self, signum: int, where: str):
        super().__init__(f"interrupted ({signal.Signals(signum).name}) at {where}")
        self.signum, self.where = signum, where

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def requested() -> int | None:
    """The signal number received since `interruptible` was entered, or None."""
    return _requested


def check(where: str) -> None:
    """Raise `Interrupted` if a signal arrived (call it where stopping loses nothing)."""
    if _requested is not None:
        raise Interrupted(_requested, where)


def _hard_exit(signum: int, why: str) -> None:
    print(f"sandbox: {why}; the last checkpoint is kept: rerun the same command to resume",
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(128 + signum)


def _handler(signum, frame) -> None:
    global _requested, _timer
    if _requested is not None:          # a second signal: leave now
        _hard_exit(signum, f"{signal.Signals(signum).name} received twice")
    _requested = signum
    _timer = threading.Timer(GRACE_SECONDS, _hard_exit,
                             (signum, f"interrupted ({signal.Signals(signum).name}) during work with no "
                                      f"step boundary within {GRACE_SECONDS:g} s"))
    _timer.daemon = True
    _timer.start()


@contextlib.contextmanager
def interruptible():
    """Route SIGINT and SIGTERM to the flag for the duration (main thread only; a no-op elsewhere)."""
    global _requested, _timer
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if _timer is not None:
            _timer.cancel()
        _requested, _timer = None, None
