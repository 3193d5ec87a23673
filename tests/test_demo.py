"""``bravesteps demo``: one process serving the web app, the scheduler and the simulator."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BRAVESTEPS = Path(sys.executable).with_name("bravesteps")
READY_WITHIN = 20.0
# No proxy from the environment may divert requests to 127.0.0.1.
# Keeps the session cookie, as a browser does: the page's CSRF token belongs to that session.
OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor()
)
HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str, body: dict[str, Any] | None = None) -> tuple[int, str, str]:
    """(status, content type, text) of a GET, or of a JSON POST when ``body`` is given."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=HEADERS)
    try:
        with OPENER.open(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, err: Path) -> dict[str, Any]:
    """Poll ``/healthz`` until it answers 200, the process dies, or the deadline passes."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"demo exited with {process.returncode}: {err.read_text()}")
        try:
            status, _, text = fetch(url + "/healthz")
            if status == 200:
                health: dict[str, Any] = json.loads(text)
                return health
        except OSError:
            pass
        time.sleep(0.1)  # readiness polling only; no test timing depends on it
    pytest.fail(f"demo not healthy within {READY_WITHIN:g}s: {err.read_text()}")


@pytest.mark.slow
def test_demo_serves_the_simulator_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "demo.sqlite"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DATABASE_URL": f"sqlite:///{database}",
    }
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(BRAVESTEPS), "demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_until_healthy(process, url, err)
        assert health["status"] == "ok"
        assert health["flows"] >= 1

        status, kind, html = fetch(url + "/simulator")
        assert status == 200 and kind.startswith("text/html")
        assert "Parent's phone" in html
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
        assert token, "the simulator page carries its CSRF token"
        HEADERS["X-CSRFToken"] = token.group(1)

        status, _, text = fetch(url + "/simulator/api/families", {"child_name": "Zebedee"})
        assert status == 201, text
        ref = json.loads(text)["ref"]
        status, _, text = fetch(f"{url}/simulator/api/families/{ref}")
        assert status == 200
        assert [m["key"] for m in json.loads(text)["parent"]] == ["onboarding.welcome"]

        first_line = out.read_text().splitlines()[0]
        assert f"{url}/simulator" in first_line

        # The staff app, with the login the demo printed: the pretend family is on the caseload.
        login = re.search(r"sign in as (\S+), password (\S+)\)", out.read_text())
        assert login, out.read_text()
        _, _, form = fetch(url + "/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        fields = {"email": login.group(1), "password": login.group(2), "csrf_token": token.group(1)}
        posted = urllib.request.Request(
            url + "/admin/login", data=urllib.parse.urlencode(fields).encode()
        )
        with OPENER.open(posted, timeout=5) as response:
            assert response.status == 200 and response.url.endswith("/admin/families")
            assert ref in response.read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert code == 0, err.read_text()
    assert "Traceback" not in err.read_text()
    assert database.exists()
    assert not (tmp_path / "instance").exists()
    # The parent's number and the words sent to them never reach the console.
    console = out.read_text() + err.read_text()
    assert "+447700900" not in console and "Zebedee" not in console
