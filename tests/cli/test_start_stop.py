"""`cachebash serve` refuses bad settings in one line, holds its data dir, and stops cleanly:
waiting calls answer empty at once, then one line says it stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from support.cli_runner import Cli, Terminal
from support.server import ServerProcess


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_settings_are_one_line_each(cachebash: Cli, tmp_path: Path) -> None:
    _refused(cachebash("serve", env={"CACHEBASH_PORT": "abc"}), "CACHEBASH_PORT='abc' is not a whole number")
    _refused(cachebash("serve", env={"CACHEBASH_PORT": "70000"}), "CACHEBASH_PORT=70000", "1 to 65535")
    _refused(cachebash("serve", env={"CACHEBASH_SWEEP_SECONDS": "soon"}), "CACHEBASH_SWEEP_SECONDS")
    _refused(cachebash("serve", env={"CACHEBASH_LOG": "loud"}), "CACHEBASH_LOG", "activity, warning, debug")
    (tmp_path / "file").write_text("x")
    _refused(cachebash("serve", env={"CACHEBASH_DATA_DIR": str(tmp_path / "file")}), "is a file, not a directory")
    _refused(cachebash("serve", env={"CACHEBASH_DATA_DIR": str(tmp_path / "file" / "sub")}), "cannot create data dir")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "cachebash.db").write_text("my notes")
    _refused(cachebash("serve", env={"CACHEBASH_DATA_DIR": str(tmp_path / "text")}), "not a CacheBash database")
    (tmp_path / "other").mkdir()
    with sqlite3.connect(tmp_path / "other" / "cachebash.db") as conn:
        conn.execute("CREATE TABLE invoices (n)")
    _refused(cachebash("serve", env={"CACHEBASH_DATA_DIR": str(tmp_path / "other")}), "tables: invoices")
    bad_flag = cachebash("serve", "--port", "70000")
    assert bad_flag.returncode == 2 and "70000 is not a port: use a number from 1 to 65535" in bad_flag.stderr


def test_a_taken_port_names_its_holder(cachebash: Cli) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = cachebash("serve", "--port", str(port))
    _refused(done, f"port {port} is in use (pid {os.getpid()}?): set CACHEBASH_PORT or stop the other server")


def test_one_server_per_data_dir(tmp_path: Path, cachebash: Cli) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        _refused(cachebash("serve", "--port", "1"), "another CacheBash server", f"pid {server.proc.pid}",  # type: ignore[union-attr]
                 server.url)
    finally:
        server.stop()
    assert "Traceback" not in "".join(server.output)


def test_root_says_where_things_are(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        root = httpx.get(server.base + "/")
        assert root.status_code == 200
        assert root.json()["mcp"]["url"] == server.url and root.json()["health"] == server.base + "/health"
        assert root.json()["console"] == server.base + "/console/"
        assert httpx.get(server.url).status_code == 405
    finally:
        server.stop()


def _waiting_call(server: ServerProcess, key: str, answers: list[httpx.Response]) -> threading.Thread:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_messages", "arguments": {"wait_seconds": 25}}}
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}

    def call() -> None:
        answers.append(httpx.post(server.url, json=body, headers=headers, timeout=60))

    thread = threading.Thread(target=call)
    thread.start()
    return thread


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_answers_waiting_calls_and_stops_in_one_line(tmp_path: Path, sig: signal.Signals) -> None:
    server = ServerProcess(tmp_path / "data").start()
    assert server.proc is not None and server.admin_key
    answers: list[httpx.Response] = []
    thread = _waiting_call(server, server.admin_key, answers)
    deadline = time.monotonic() + 10
    while _health(server).get("waitingCalls") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    asked = time.monotonic()
    server.proc.send_signal(sig)
    thread.join(30)
    assert server.proc.wait(30) == 0
    server.stop()
    answered = time.monotonic() - asked
    assert answered < 20, "the 25 s wait was cut short by the signal"
    assert answers[0].status_code == 200
    result = answers[0].json()["result"]["structuredContent"]
    assert result["success"] is True and result["count"] == 0
    output = "".join(server.output)
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"CacheBash stopped ({sig.name}, 1 waiting call(s) answered early)"), output


def test_a_second_signal_stops_at_once_and_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    assert server.proc is not None and server.admin_key
    with socket.create_connection(("127.0.0.1", server.port)) as slow:  # a request whose body is still coming
        slow.sendall(f"POST /v1/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.admin_key}\r\n"
                     "Content-Length: 100\r\n\r\n{".encode())
        time.sleep(0.5)  # let the server read the head (nothing observable to wait on but the socket)
        server.proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert server.proc.poll() is None, "the first signal waits for the unfinished request"
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(30) == 0
    server.stop()
    output = "".join(server.output)
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == "CacheBash stopped (SIGINT) at once (second signal).", output


def _health(server: ServerProcess) -> dict[str, object]:
    return dict(httpx.get(server.base + "/health").json())


def test_ctrl_c_in_a_terminal(tmp_path: Path) -> None:
    """As a person runs it (tmux): Ctrl-C stops the server with one line and exit code 0."""
    from cachebash.bench.server import free_port
    from support.server import BIN

    port = free_port()
    with Terminal(f"{BIN / 'cachebash'} serve --port {port} --data-dir {tmp_path / 'data'}", dict(os.environ)) as term:
        term.wait_for("CacheBash serving")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        term.keys("C-c")
        screen = term.wait_for("exit=")
    assert "exit=0" in screen and "Traceback" not in screen
    assert re.search(r"CacheBash stopped \(SIGINT\) in \d+\.\d s\.", screen), screen


def test_python_dash_m_is_the_same_command(cachebash: Cli) -> None:
    via_module = subprocess.run([sys.executable, "-m", "cachebash", "--version"], capture_output=True, text=True,
                                env=cachebash.env, timeout=60)
    assert via_module.returncode == 0 and via_module.stdout == cachebash.ok("--version")
