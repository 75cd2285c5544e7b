"""Drive headless Chromium through its DevTools protocol over a pipe (no websocket library).

``--remote-debugging-pipe`` makes Chromium read commands on its fd 3 and write answers and
events on its fd 4, each a JSON message ended by a NUL byte. :class:`Page` opens one tab, loads a
URL, and evaluates JavaScript in it (promises awaited), which is enough to click through a page
and read what it drew.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import time
from typing import Any


class DevToolsError(RuntimeError):
    """Chromium answered a command with an error, or a script threw."""


class Page:
    """One headless Chromium with one tab; use as a context manager.

    Args:
        chromium: The browser's executable.
        timeout_s: How long one command may take.
    """

    def __init__(self, chromium: str, *, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        # Above any fd the child starts with, so the two dup2 calls cannot clobber each other.
        high_read = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
        high_write = fcntl.fcntl(answers_write, fcntl.F_DUPFD, 10)
        for fd in (commands_read, answers_write):
            os.close(fd)

        def to_fds_3_and_4() -> None:
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self._process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1600,1200",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=to_fds_3_and_4,
        )
        os.close(high_read)
        os.close(high_write)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None

    def __enter__(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=15)
        os.close(self._commands)
        os.close(self._answers)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> dict[str, Any]:
        """Send one command and wait for its answer (events in between are dropped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise DevToolsError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))
        raise DevToolsError(f"{method}: no answer within {self.timeout_s} s")

    def goto(self, url: str) -> None:
        """Load ``url`` in the tab (returns once navigation starts; wait with :meth:`until`)."""
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"script failed: {text}")
        return result.get("result", {}).get("value")

    def until(self, expression: str, *, timeout_s: float = 60.0) -> Any:
        """Evaluate ``expression`` until it is truthy; return that value.

        Raises:
            DevToolsError: still falsy after ``timeout_s`` (the last value is in the message).
        """
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.3)
        raise DevToolsError(f"{expression!r} still {value!r} after {timeout_s} s")

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select(
                [self._answers], [], [], max(0.0, deadline - time.monotonic())
            )
            if not ready:
                raise DevToolsError(f"no message from Chromium within {self.timeout_s} s")
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                raise DevToolsError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))
