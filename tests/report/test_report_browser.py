"""The report in a real browser: headless Chromium (Debian's `chromium`) over the DevTools protocol.

Chromium opens the report of a replay of pcaps/ from a file:// URL (so any
attempt to fetch something from the network would show as an error), a
full-page screenshot is kept as a test artefact in pytest's tmp dir, and
the test checks that every chart drew shapes with a real size and that the
page logged no console error and threw no exception. A control page with a
console.error proves the harness would see one.

Runs as root with --no-sandbox (Chromium refuses root otherwise); the
DevTools port listens on loopback only and the browser's process group is
killed at the end, even on failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

websocket = pytest.importorskip("websocket", reason="websocket-client not installed (pip install -e .[dev])")

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).with_name("netsentry")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT = 60

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package chromium, "
                                                         "in setup.sh's APT_PACKAGES)")

CHARTS_JS = """
(() => {
  const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
    const shapes = [...svg.querySelectorAll('rect, path, polygon')];
    const drawn = shapes.filter(s => { const b = s.getBBox(); return b.width > 0 && b.height > 0; });
    const box = svg.getBoundingClientRect();
    return {cls: svg.getAttribute('class'), width: box.width, height: box.height,
            shapes: shapes.length, drawn: drawn.length};
  });
  return JSON.stringify({charts, title: document.title,
                         height: document.documentElement.scrollHeight,
                         width: document.documentElement.scrollWidth});
})()
"""


class DevTools:
    """A minimal DevTools-protocol client on one page target."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=TIMEOUT, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_for(self, method: str) -> dict[str, Any]:
        for msg in self.events:
            if msg.get("method") == method:
                return msg
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def errors(self) -> list[str]:
        out = []
        for msg in self.events:
            method, params = msg.get("method"), msg.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.append(f"exception: {details.get('text', '')} "
                           f"{details.get('exception', {}).get('description', '')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return out


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[str]:
    """A headless Chromium; yields the http base of its DevTools endpoint on 127.0.0.1."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-sync", "--disable-component-update",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
         "--window-size=1200,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start its DevTools endpoint (exit {proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)       # the browser and its helper processes: our group only
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def open_page(base: str, url: str) -> DevTools:
    with urllib.request.urlopen(f"{base}/json/list", timeout=TIMEOUT) as resp:  # noqa: S310 - loopback
        targets = json.load(resp)
    page = next(t for t in targets if t.get("type") == "page")
    tab = DevTools(page["webSocketDebuggerUrl"])
    tab.call("Runtime.enable")
    tab.call("Log.enable")
    tab.call("Page.enable")
    tab.call("Page.navigate", url=url)
    tab.wait_for("Page.loadEventFired")
    return tab


def test_report_renders_its_charts_in_chromium(browser: str, tmp_path: Path):
    logdir = tmp_path / "logs"
    proc = subprocess.run([str(BIN), "replay", "pcaps/", "-S", "signatures/netsentry.rules", "-l", str(logdir),
                           "-q", "--report", "--set", "anomaly.enabled=true"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    report = logdir / "report.html"
    tab = open_page(browser, report.as_uri())
    try:
        info = json.loads(tab.call("Runtime.evaluate", expression=CHARTS_JS, returnByValue=True)["result"]["value"])
        shot = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": info["width"], "height": min(info["height"], 8000), "scale": 1})
        png = base64.b64decode(shot["data"])
        artefact = tmp_path / "report.png"           # kept with pytest's tmp dirs, never in the repository
        artefact.write_bytes(png)
        print(f"screenshot: {artefact}")
        errors = tab.errors()
    finally:
        tab.ws.close()
    assert info["title"].startswith("netsentry report")
    charts = info["charts"]
    classes = [c["cls"] for c in charts]
    assert "chart timeline" in classes and classes.count("chart bars") >= 4 and "chart versus" in classes
    for chart in charts:
        assert chart["width"] > 100 and chart["height"] > 10, chart
        assert chart["drawn"] > 0, f"chart drew nothing: {chart}"
    timeline = charts[classes.index("chart timeline")]
    assert timeline["drawn"] >= 10                    # the rate area, alert bars, anomaly marks
    assert errors == []
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    assert info["width"] <= 1200                       # no horizontal scrolling at laptop width


def test_harness_sees_console_errors(browser: str, tmp_path: Path):
    """The control: a page that logs an error and throws is caught by `errors()`."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom');"
                    "setTimeout(() => { throw new Error('bang'); }, 0);</script></body></html>")
    tab = open_page(browser, page.as_uri())
    try:
        tab.call("Runtime.evaluate", expression="new Promise(r => setTimeout(r, 100))", awaitPromise=True)
        errors = tab.errors()
    finally:
        tab.ws.close()
    assert any("boom" in e for e in errors), errors
    assert any("bang" in e for e in errors), errors
