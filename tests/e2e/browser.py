"""A headless Chromium driven through the Chrome DevTools Protocol over a pipe, for browser tests.

No Playwright or WebDriver (neither installs here): Chromium's `--remote-debugging-pipe` reads
CDP commands from fd 3 and writes replies and events to fd 4, each a JSON text ended by a NUL.
This is the same transport Puppeteer uses; a reader thread matches replies to commands by id.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces we may not have
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(AssertionError):
    """CDP reported an error, or a page did not reach the expected state in time."""


class Chromium:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, *, width: int = 1400, height: int = 1000, timeout: float = 30.0) -> None:
        binary = chromium_path()
        if binary is None:
            raise BrowserError("chromium is not installed")
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="mldr-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:
            # In the child: CDP in on fd 3, out on fd 4. Via fresh copies first, in case either
            # pipe end already sits on 3 or 4; pass_fds below keeps 3 and 4 open through exec.
            reader, writer = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(reader, 3)
            os.dup2(writer, 4)

        self.process = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),  # only dup2 before exec: safe although this process has threads
            start_new_session=True,  # its renderer and GPU processes share a group we can stop
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = self._attach()

    # -- transport --

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        box = self._replies.get(message["id"])
                    if box is not None:
                        box.put(message)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> Any:
        with self._lock:
            self._next_id += 1
            call_id = self._next_id
            box: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[call_id] = box
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session and getattr(self, "session", None):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        try:
            reply = box.get(timeout=self.timeout)
        except queue.Empty:
            raise BrowserError(f"no reply to {method} within {self.timeout:.0f}s") from None
        finally:
            with self._lock:
                self._replies.pop(call_id, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _attach(self) -> str:
        targets = self.call("Target.getTargets", session=False)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = self.call(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}, session=False
        )
        return str(session["sessionId"])

    # -- page --

    def goto(self, url: str) -> None:
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}: {expression[:200]}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None, what: str = "") -> Any:
        """Evaluate `expression` until it is truthy; return its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except BrowserError:
                last = None  # mid-navigation: the context is being replaced
            if last:
                return last
            time.sleep(0.25)
        url = self.evaluate("location.href")
        raise BrowserError(
            f"timed out waiting for {what or expression[:120]} (at {url}, last value {last!r})"
        )

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type, as a user would (so React's change handlers see it)."""
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})", what=selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    # -- lifecycle --

    def close(self) -> None:
        self.timeout = 5.0  # the browser may close its end before it answers
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close", session=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
