"""Load a page in headless Chromium over the DevTools protocol and collect what went wrong.

Used by the report test: a self-contained report must load with no failed request,
no request leaving the file at all, and no console error or uncaught exception.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageLoad:
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    title: str = ""


def load_page(url: str, timeout: float = 60.0) -> PageLoad:
    """Open ``url`` in a fresh headless Chromium and report requests, failures and errors."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [
                chromium_path() or "chromium",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not port_file.exists() or not port_file.read_text().strip():
                if time.monotonic() > deadline:
                    raise TimeoutError("Chromium did not open its DevTools port")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            return asyncio.run(asyncio.wait_for(_drive(port, url), timeout))
        finally:
            proc.kill()
            proc.wait()


async def _drive(port: int, url: str) -> PageLoad:
    import json as _json
    import urllib.request

    from websockets.asyncio.client import connect

    targets = _json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
    page = next(t for t in targets if t["type"] == "page")
    result = PageLoad()
    async with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
        counter = 0

        async def send(method: str, **params: object) -> int:
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            return counter

        for domain in ("Network", "Runtime", "Log", "Page"):
            await send(f"{domain}.enable")
        await send("Page.navigate", url=url)
        loaded = False
        title_id = None
        while True:
            message = json.loads(await ws.recv())
            method = message.get("method")
            params = message.get("params", {})
            if method == "Network.requestWillBeSent":
                result.requests.append(params["request"]["url"][:120])
            elif method == "Network.loadingFailed":
                result.failed.append(f"{params.get('errorText')} ({params.get('requestId')})")
            elif method == "Runtime.exceptionThrown":
                result.exceptions.append(str(params.get("exceptionDetails", {}).get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                result.console_errors.append(str(params.get("args")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                result.console_errors.append(params["entry"].get("text", ""))
            elif method == "Page.loadEventFired" and not loaded:
                loaded = True
                title_id = await send("Runtime.evaluate", expression="document.title")
            elif title_id is not None and message.get("id") == title_id:
                result.title = message["result"]["result"].get("value", "")
                return result
