"""A headless Chromium driven over the DevTools protocol, from the test's own event loop.

Why not selenium: its calls block, and the nodes under test run in-process on the same asyncio
loop that would have to answer the page's requests while selenium waits; every call would need
a thread. The DevTools protocol is one websocket, which aiohttp (already a dependency) speaks,
so the browser is awaited like any other peer, and no driver binary or extra package is needed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

#: Debian's package; CHROMIUM overrides it.
CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class BrowserError(Exception):
    pass


class Page:
    """One tab: navigate, evaluate, wait for a condition, click and type like a user."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        #: Uncaught exceptions, console errors and CSP reports seen so far.
        self.errors: list[str] = []
        self._mobile = False

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details["text"])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            # A refused fetch while the node is down is the point of some tests, not a bug.
            if entry.get("source") != "network":
                self.errors.append(entry["text"])

    async def goto(self, url: str) -> None:
        loaded = self.browser.expect("Page.loadEventFired", self.session)
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot load {url}: {result['errorText']}")
        await asyncio.wait_for(loaded, 20)

    async def js(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, timeout: float = 15.0, what: str = "") -> None:
        """Poll until the expression is truthy (in JavaScript's sense: an element counts)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if await self.js(f"!!({expression})"):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or expression}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """A real mouse click at the element's centre (it must be visible and not covered)."""
        box = await self.js(
            f"""(() => {{
                const e = document.querySelector({json.dumps(selector)});
                if (!e) return null;
                e.scrollIntoView({{block: "center", inline: "center"}});
                const r = e.getBoundingClientRect();
                return [r.x + r.width / 2, r.y + r.height / 2, r.width, r.height];
            }})()"""
        )
        if not box or box[2] == 0 or box[3] == 0:
            raise BrowserError(f"nothing visible to click at {selector}")
        x, y = box[0], box[1]
        hit = await self.js(
            f"document.querySelector({json.dumps(selector)})"
            f".contains(document.elementFromPoint({x}, {y}))"
        )
        if not hit:
            raise BrowserError(f"{selector} is covered by another element")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    async def type_into(self, selector: str, text: str) -> None:
        """Focus the field, clear it and type (input events as from a keyboard). Focus is
        given, not clicked for: the keys must not go elsewhere if the page moved meanwhile."""
        await self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.focus(); e.select(); })()"
        )
        await self.press("Backspace", 8)
        if text:
            await self.send("Input.insertText", {"text": text})

    async def press(self, key: str, code: int) -> None:
        """One key, down and up (``Enter``/13 submits a form)."""
        typed = {"text": "\r"} if key == "Enter" else {}
        for kind in ("keyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}
                | (typed if kind == "keyDown" else {}),
            )

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self._mobile = mobile
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 2 if mobile else 1,
                "mobile": mobile,
            },
        )

    async def screenshot(
        self, path: Path, fmt: str = "png", only: str | None = None, height: int | None = None
    ) -> None:
        """The page's top ``height`` pixels, or all of it (or the element ``only`` selects):
        the viewport grows for the shot (so nothing is cut), then returns to ``viewport``'s
        size."""
        width, view_height = await self.js("[window.innerWidth, window.innerHeight]")
        full = height or await self.js("document.documentElement.scrollHeight")
        mobile = self._mobile
        await self.viewport(width, full, mobile)
        params: dict[str, Any] = {"format": fmt}
        if fmt != "png":
            params["quality"] = 80
        if only:
            box = await self.js(
                f"(() => {{ const r = document.querySelector({json.dumps(only)})"
                ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()"
            )
            x, y, w, h = box
            params["clip"] = {"x": x, "y": y, "width": w, "height": h, "scale": 1}
        data = await self.send("Page.captureScreenshot", params)
        path.write_bytes(base64.b64decode(data["data"]))
        await self.viewport(width, view_height, mobile)


class Browser:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self._pages: dict[str, Page] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        assert self._ws is not None
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        await self._ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, 30)

    def expect(self, method: str, session: str | None = None) -> asyncio.Future[dict[str, Any]]:
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((method, session, future))
        return future

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._calls.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(BrowserError(str(data["error"])))
                    else:
                        future.set_result(data.get("result", {}))
                continue
            method, session = data.get("method"), data.get("sessionId")
            params = data.get("params", {})
            page = self._pages.get(session or "")
            if page is not None:
                page._event(method, params)
            for waiter in list(self._waiters):
                if waiter[0] == method and waiter[1] in (None, session):
                    self._waiters.remove(waiter)
                    if not waiter[2].done():
                        waiter[2].set_result(params)
        for future in self._calls.values():
            if not future.done():
                future.set_exception(BrowserError("the browser went away"))

    async def new_page(self, width: int = 1280, height: int = 900) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session] = page
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.viewport(width, height)
        return page

    async def grant(self, origin: str, permissions: list[str]) -> None:
        await self.send("Browser.grantPermissions", {"origin": origin, "permissions": permissions})


def _remove_profile(profile: str) -> None:
    shutil.rmtree(profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def launch() -> AsyncIterator[Browser]:
    """A fresh Chromium with its own profile; afterwards its whole process group is ended and
    the profile removed."""
    if CHROMIUM is None:
        raise BrowserError("chromium is not installed")
    profile = tempfile.mkdtemp(prefix="dash-chromium-")
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    browser = Browser()
    reader: asyncio.Task[None] | None = None
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        async with asyncio.timeout(30):
            while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
                if process.returncode is not None:
                    raise BrowserError(f"chromium exited with {process.returncode}")
                await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        async with aiohttp.ClientSession() as http:
            browser._ws = await http.ws_connect(
                f"ws://127.0.0.1:{port}{path}", max_msg_size=0, autoping=False
            )
            reader = asyncio.create_task(browser._read())
            yield browser
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.send("Browser.close"), 5)
            await browser._ws.close()
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
        # The renderer and helper processes share the group of the one started here.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        await asyncio.to_thread(_remove_profile, profile)
