"""SIGINT and SIGTERM as exceptions, with a window in which they wait.

A worker must never be interrupted while Optuna creates a trial or records its outcome: the
trial would stay RUNNING (or never exist) instead of being recorded as FAIL with the reason.
:class:`signals_as_interrupts` turns the first signal into :class:`Interrupted`, raised at once
or, inside a :meth:`~signals_as_interrupts.defer` window, when the window ends.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the trial in flight is recorded as FAIL with the reason."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class signals_as_interrupts:
    """Turn SIGTERM (and SIGINT) into :class:`Interrupted` in the main thread.

    Between :meth:`defer` and :meth:`resume` a signal is held and raised at ``resume``: a worker
    defers while it creates a trial and while Optuna records its outcome, so an interrupt lands
    inside the trial (recorded as FAIL with the reason) or between trials, never in between.
    Only the first signal interrupts; later ones are ignored. Outside the main thread the
    handlers cannot be installed and the context manager does nothing.
    """

    def __enter__(self) -> signals_as_interrupts:
        self.previous: dict[signal.Signals, Any] = {}
        self.stopping = False
        self.deferred = False
        self.pending: str | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def defer(self) -> None:
        """Hold a signal that arrives from now on until :meth:`resume`."""
        self.deferred = True

    def resume(self) -> None:
        """Stop deferring; raise the signal that arrived meanwhile, if any.

        Raises:
            Interrupted: a signal arrived while deferred.
        """
        self.deferred = False
        if self.pending is not None:
            name, self.pending = self.pending, None
            raise Interrupted(name)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        # Only the first signal interrupts: a second one (Ctrl-C reaches the whole group and
        # `launch` forwards it too) must not cut short the recording of the trial in flight.
        if self.stopping:
            return
        self.stopping = True
        name = signal.Signals(signum).name
        if self.deferred:
            self.pending = name
            return
        raise Interrupted(name)
