"""A tiny driver for headless Chromium over the DevTools protocol on a pipe (no websocket, no
extra package): ``--remote-debugging-pipe`` makes the browser read commands from file descriptor
3 and write replies and events to descriptor 4, each a JSON object ended by a NUL byte.

Used by tests/test_report.py to open a report, click its slider, press keys, read the page and
take screenshots, as a person would.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page (``open``, ``evaluate``, ``click``, ``key``, ``screenshot``)."""

    def __init__(self, executable: str, profile: Path, width: int = 1300, height: int = 1000,
                 timeout: float = 60.0) -> None:  # a hung browser's bound: each reply takes milliseconds
        commands_read, commands_write = os.pipe()
        replies_read, replies_write = os.pipe()

        def as_fds_3_and_4() -> None:  # in the child, before exec
            a, b = os.dup(commands_read), os.dup(replies_write)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"],
            preexec_fn=as_fds_3_and_4, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._write, self._read_fd = commands_write, replies_read
        self._buffer = b""
        self._id = 0
        self._events: list[dict] = []
        self.timeout = timeout
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session=True)

    # -- the protocol --------------------------------------------------------------------------

    def _message(self) -> dict:
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._read_fd], [], [], self.timeout)
            if not ready:
                raise TimeoutError("no reply from the browser")
            chunk = os.read(self._read_fd, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: bool = False, **params: Any) -> dict:
        self._id += 1
        message: dict = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, event: str) -> dict:
        for k, seen in enumerate(self._events):
            if seen.get("method") == event:
                return self._events.pop(k)
        while True:
            message = self._message()
            if message.get("method") == event:
                return message
            self._events.append(message)

    # -- what a person does ----------------------------------------------------------------------

    def open(self, url: str) -> None:
        self._events.clear()
        self.send("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def rect(self, selector: str) -> dict:
        return json.loads(self.evaluate(
            f"JSON.stringify(document.querySelector({json.dumps(selector)}).getBoundingClientRect())"))

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button="left", clickCount=1)

    def key(self, key: str, code: str, key_code: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", session=True, type=kind, key=key, code=code,
                      windowsVirtualKeyCode=key_code)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=10)  # then it is killed: closing is best effort, nothing is checked
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read_fd)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
