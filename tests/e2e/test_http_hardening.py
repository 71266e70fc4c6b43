"""The HTTP edge of a real `cachebash serve`: strict JSON both ways, every refusal in JSON, and
connections that cannot be held open for ever (deadlines for idle connections, request heads
and bodies; a cap on open connections), all on loopback and bounded in count and time."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cachebash.ports.store import Store
from cachebash.services import keys
from support.server import AgentFactory, ServerProcess

MODERN = "2026-07-28"
ACCEPT = "application/json, text/event-stream"
#: The limits of the `limited` server: short, so that each deadline test takes about a second.
LIMITS = {"CACHEBASH_HTTP_IDLE_SECONDS": "1", "CACHEBASH_HTTP_HEAD_SECONDS": "1",
          "CACHEBASH_HTTP_BODY_SECONDS": "1", "CACHEBASH_HTTP_MAX_CONNECTIONS": "20"}
#: No deadline here may take longer than this to fire, however loaded the machine.
PATIENCE = 10.0


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("limited") / "data", env=LIMITS).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def sdk_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("sdk") / "data", env={"CACHEBASH_MCP_FAST_PATH": "0"}).start()
    yield proc
    proc.stop()


@pytest.fixture(params=["fast path", "sdk"])
def either(request: pytest.FixtureRequest, limited: ServerProcess, sdk_only: ServerProcess) -> ServerProcess:
    return limited if request.param == "fast path" else sdk_only


def _headers(server: ServerProcess, version: str | None, method: str = "tools/call",
             name: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json", "Accept": ACCEPT}
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    if version == MODERN:
        headers["Mcp-Method"] = method
        if name is not None:
            headers["Mcp-Name"] = name
    return headers


def _call_text(version: str | None, tool: str, arguments: str) -> str:
    """A tools/call body with the arguments as raw JSON text (so it can hold any token)."""
    params = '{"name":' + json.dumps(tool) + ',"arguments":' + arguments
    if version == MODERN:
        params += (',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
                   '"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},'
                   '"io.modelcontextprotocol/clientCapabilities":{}}')
    return '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":' + params + "}}"


def _call(server: ServerProcess, version: str | None, tool: str, arguments: str) -> httpx.Response:
    return httpx.post(server.url, content=_call_text(version, tool, arguments).encode(),
                      headers=_headers(server, version, name=tool), timeout=PATIENCE)


def _strict(text: str | bytes) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in an answer")

    return json.loads(text, parse_constant=refuse)


def _result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = _strict(response.content)["result"]
    assert _strict(result["content"][0]["text"]) == result["structuredContent"]
    return dict(result["structuredContent"])


# ---------------------------------------------------------------- strict JSON, both ways


@pytest.mark.parametrize("version", [MODERN, "2025-06-18", None])
@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_non_finite_numbers_are_refused_before_anything_runs(either: ServerProcess, version: str | None,
                                                             token: str) -> None:
    task = _result(_call(either, version, "create_task", '{"title":"costly","target":"admin"}'))
    _result(_call(either, version, "claim_task", json.dumps({"taskId": task["taskId"]})))
    response = _call(either, version, "complete_task",
                     '{"taskId":"' + task["taskId"] + '","completed_status":"SUCCESS","cost_usd":' + token + "}")
    assert response.status_code == 400
    error = _strict(response.content)["error"]
    assert error["code"] == -32700
    assert ("too large for a 64-bit float" if token == "1e999" else f"{token} is not a JSON number") in error["message"]
    # Nothing ran: the task is still claimed, and no answer carries a non-finite number.
    after = _result(_call(either, version, "get_task", json.dumps({"taskId": task["taskId"]})))
    assert after["task"]["status"] == "claimed" and after["task"].get("costUsd") is None
    _result(_call(either, version, "get_tasks", '{"status":"all"}'))


def _open_store(server: ServerProcess) -> Store:
    if server.env.get("CACHEBASH_STORE") == "firestore":
        from cachebash.adapters.firestore_store import FirestoreStore

        return FirestoreStore(project=server.env["GOOGLE_CLOUD_PROJECT"],
                              emulator_host=server.env["FIRESTORE_EMULATOR_HOST"])
    from cachebash.adapters.sqlite_store import SqliteStore

    return SqliteStore(Path(server.data_dir) / "cachebash.db")


def _corrupt_task(server: ServerProcess, key: str, task_id: str, fields: dict[str, Any]) -> None:
    """Write fields into a task's document behind the server's back, as a bug or a hand edit might."""
    store = _open_store(server)
    try:
        record = store.get(keys.key_path(keys.hash_key(key)))
        assert record is not None
        path = f"tenants/{record['tenantId']}/tasks/{task_id}"
        store.run_transaction(lambda tx: tx.update(path, fields))
    finally:
        store.close()


def _logged(server: ServerProcess, request_id: str) -> bool:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if any(request_id in line for line in list(server.output)):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.anyio
async def test_an_unexpected_failure_is_an_internal_error_with_a_logged_id(
        server: ServerProcess, agents: AgentFactory) -> None:
    builder = await agents("builder")
    task = await builder.call("create_task", title="corrupt", target="builder")
    _corrupt_task(server, builder.key, task["taskId"], {"status": "no-such-status"})
    error = await builder.fail("claim_task", taskId=task["taskId"])
    assert error["code"] == "INTERNAL" and error["requestId"] in error["message"], error
    assert _logged(server, error["requestId"])
    assert (await builder.call("get_task", taskId=task["taskId"]))["task"]["status"] == "no-such-status"


@pytest.mark.parametrize("version", [MODERN, "2025-06-18"])
def test_both_paths_answer_an_internal_error_alike(either: ServerProcess, version: str) -> None:
    task = _result(_call(either, version, "create_task", '{"title":"corrupt","target":"admin"}'))
    assert either.admin_key is not None
    _corrupt_task(either, either.admin_key, task["taskId"], {"status": "no-such-status"})
    response = _call(either, version, "claim_task", json.dumps({"taskId": task["taskId"]}))
    reply = _strict(response.content)["result"]
    assert reply["isError"] is True
    error = _result(response)["error"]
    assert set(error) == {"code", "message", "requestId"} and error["code"] == "INTERNAL"
    assert _logged(either, error["requestId"])
    assert not any("Error executing tool" in line for line in either.output)


def test_a_failure_outside_any_tool_is_a_json_500_with_a_logged_id(either: ServerProcess) -> None:
    created = _result(_call(either, None, "create_key", '{"programId":"broken-key"}'))
    store = _open_store(either)
    try:  # a key record without its tenant: authentication itself fails
        path = keys.key_path(keys.hash_key(created["apiKey"]))
        record = store.get(path)
        assert record is not None
        store.run_transaction(lambda tx: tx.set(path, {k: v for k, v in record.items() if k != "tenantId"}))
    finally:
        store.close()
    response = httpx.post(either.url, content=_call_text(None, "get_tasks", "{}").encode(),
                          headers={**_headers(either, None), "Authorization": f"Bearer {created['apiKey']}"},
                          timeout=PATIENCE)
    assert "internal error" in _refusal(response, 500, "INTERNAL")
    request_id = _strict(response.content)["error"]["requestId"]
    assert _logged(either, request_id)


@pytest.mark.anyio
async def test_a_stored_non_finite_number_never_goes_out(server: ServerProcess, agents: AgentFactory) -> None:
    """A value that got in before the wire refused it (here: written straight into the store)
    makes the answers that would carry it a structured INTERNAL error, logged with its id."""
    if server.env.get("CACHEBASH_STORE") != "firestore":
        pytest.skip("SQLite cannot hold a non-finite number at all: its store refuses the document")
    builder = await agents("builder")
    task = await builder.call("create_task", title="poisoned", target="builder")
    _corrupt_task(server, builder.key, task["taskId"], {"costUsd": float("inf")})
    for tool, arguments in [("get_task", {"taskId": task["taskId"]}), ("get_tasks", {"status": "all"})]:
        error = await builder.fail(tool, **arguments)
        assert error["code"] == "INTERNAL" and error["requestId"] in error["message"], error
        assert _logged(server, error["requestId"])


# ---------------------------------------------------------------- every refusal is JSON


def _refusal(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = _strict(response.content)
    assert body["success"] is False and body["error"]["code"] == code, body
    return str(body["error"]["message"])


@pytest.mark.parametrize("key", [True, False])
@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_only_post_is_served_at_the_mcp_endpoint(either: ServerProcess, method: str, key: bool) -> None:
    headers = {"Accept": "text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {either.admin_key}"
    response = httpx.request(method, either.url, headers=headers, timeout=PATIENCE)
    assert "POST only" in _refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"


def test_a_body_over_the_limit_is_413(either: ServerProcess) -> None:
    big = b'{"pad":"' + b"x" * (300 * 1024) + b'"}'
    declared = httpx.post(either.url, content=big, headers=_headers(either, None), timeout=PATIENCE)
    assert "262144 bytes" in _refusal(declared, 413, "PAYLOAD_TOO_LARGE")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 16 * 1024):
            yield big[start:start + 16 * 1024]

    streamed = httpx.post(either.url, content=chunks(), headers=_headers(either, None), timeout=PATIENCE)
    _refusal(streamed, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(("headers", "status", "code", "words"), [
    ({"Content-Type": "text/plain"}, 400, "BAD_REQUEST", "Content-Type: application/json"),
    ({"Host": "evil.example:8080"}, 421, "MISDIRECTED_REQUEST", "Host header"),
    ({"Origin": "http://evil.example"}, 403, "FORBIDDEN", "Origin header"),
    ({"Accept": "text/html"}, 406, "NOT_ACCEPTABLE", "Accept"),
])
@pytest.mark.parametrize("version", [MODERN, "2025-06-18"])
def test_transport_refusals_are_json(either: ServerProcess, headers: dict[str, str], status: int, code: str,
                                     words: str, version: str) -> None:
    body = _call_text(version, "get_tasks", "{}").encode()
    response = httpx.post(either.url, content=body, headers={**_headers(either, version, name="get_tasks"),
                                                             **headers}, timeout=PATIENCE)
    if status == 406 and version != MODERN:
        # The handshake-era SDK path answers this one as a JSON-RPC error (JSON already).
        assert response.status_code == 406 and "application/json" in _strict(response.content)["error"]["message"]
        return
    assert words in _refusal(response, status, code)


def test_unknown_routes_and_methods_elsewhere_are_json(either: ServerProcess) -> None:
    assert "POST /v1/mcp" in _refusal(httpx.get(f"{either.base}/nope", timeout=PATIENCE), 404, "NOT_FOUND")
    response = httpx.post(f"{either.base}/health", timeout=PATIENCE)
    assert "POST is not allowed on /health" in _refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]


# ---------------------------------------------------------------- connections cannot be held open


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return data, time.monotonic() - started


def _json_answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, _strict(body)


def _send_slowly(sock: socket.socket, data: bytes, pause: float) -> None:
    try:
        for byte in data:
            sock.sendall(bytes([byte]))
            time.sleep(pause)
    except OSError:
        pass  # the server hung up on us, as it should


def test_a_connection_that_sends_nothing_is_closed(limited: ServerProcess) -> None:
    data, took = _read_until_closed(_connect(limited))
    assert data == b"" and took < PATIENCE


def test_a_connection_that_sends_only_blank_lines_is_closed(limited: ServerProcess) -> None:
    sock = _connect(limited)
    _send_slowly(sock, b"\r\n" * 40, 0.1)  # 4 s of bytes that never start a request: not a reason to stay
    assert _read_until_closed(sock)[0] == b""


def test_an_idle_keep_alive_connection_is_closed(limited: ServerProcess) -> None:
    sock = _connect(limited)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data, took = _read_until_closed(sock)
    status, headers, body = _json_answer(data)
    assert status == 200 and body["status"] == "ok" and "close" not in headers.get("connection", "")
    assert took < PATIENCE


@pytest.mark.parametrize("pause", [0.0, 0.1], ids=["half sent", "trickled"])
def test_a_request_head_that_does_not_arrive_in_time_is_408(limited: ServerProcess, pause: float) -> None:
    sock = _connect(limited)
    _send_slowly(sock, b"POST /v1/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 60, pause)
    status, headers, body = _json_answer(_read_until_closed(sock)[0])
    assert status == 408 and headers["connection"] == "close"
    assert body["error"]["code"] == "REQUEST_TIMEOUT" and "headers" in body["error"]["message"]


def test_a_request_head_larger_than_the_limit_is_431(limited: ServerProcess) -> None:
    sock = _connect(limited)
    with contextlib.suppress(OSError):  # the server may hang up before it has read it all
        sock.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (200 * 1024) + b"\r\n\r\n")
    status, _, body = _json_answer(_read_until_closed(sock)[0])
    assert status == 431 and body["error"]["code"] == "HEADERS_TOO_LARGE"


def test_a_request_that_is_not_http_is_a_json_400(limited: ServerProcess) -> None:
    sock = _connect(limited)
    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    status, headers, body = _json_answer(_read_until_closed(sock)[0])
    assert status == 400 and headers["connection"] == "close" and body["error"]["code"] == "BAD_REQUEST"


def _short_body_request(server: ServerProcess, key: bool) -> bytes:
    lines = ["POST /v1/mcp HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Content-Type: application/json",
             f"Accept: {ACCEPT}", "Content-Length: 100"]
    if key:
        lines.append(f"Authorization: Bearer {server.admin_key}")
    return ("\r\n".join(lines) + '\r\n\r\n{"jsonrpc":').encode()


def test_a_body_shorter_than_announced_is_408(limited: ServerProcess) -> None:
    sock = _connect(limited)
    sock.sendall(_short_body_request(limited, key=True))
    data, took = _read_until_closed(sock)
    status, headers, body = _json_answer(data)
    assert status == 408 and headers["connection"] == "close" and took < PATIENCE
    assert body["error"]["code"] == "REQUEST_TIMEOUT" and "body" in body["error"]["message"]


def test_a_short_body_after_a_refusal_does_not_hold_the_connection(limited: ServerProcess) -> None:
    sock = _connect(limited)
    sock.sendall(_short_body_request(limited, key=False))
    data, took = _read_until_closed(sock)  # 401 at once, then closed at the body deadline
    assert _json_answer(data)[0] == 401 and took < PATIENCE


def test_connections_beyond_the_cap_are_refused_503_and_service_resumes(limited: ServerProcess) -> None:
    socks = {sock.fileno(): sock for sock in (_connect(limited) for _ in range(50))}
    answers = {fd: b"" for fd in socks}
    with selectors.DefaultSelector() as waiting:
        for sock in socks.values():
            sock.setblocking(False)
            waiting.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + PATIENCE
        while waiting.get_map() and time.monotonic() < deadline:
            for key, _ in waiting.select(timeout=0.5):
                try:
                    chunk = socks[key.fd].recv(65536)
                except ConnectionResetError:
                    chunk = b""
                answers[key.fd] += chunk
                if not chunk:  # closed: refused (after its 503), or idle past the deadline
                    waiting.unregister(key.fileobj)
        still_open = len(waiting.get_map())
    for sock in socks.values():
        sock.close()
    assert still_open == 0
    refused = [_json_answer(raw) for raw in answers.values() if raw]
    # 20 were let in (and closed when idle for 1 s); the others were refused at once.
    assert 25 <= len(refused) <= 30
    for status, headers, body in refused:
        assert status == 503 and headers["retry-after"] == "1" and headers["connection"] == "close"
        assert body["error"]["code"] == "UNAVAILABLE" and body["error"]["retryAfter"] == 1
    assert httpx.get(f"{limited.base}/health", timeout=PATIENCE).json()["status"] == "ok"


def test_a_prompt_client_is_unaffected_by_the_deadlines(limited: ServerProcess) -> None:
    with httpx.Client(headers=_headers(limited, None), timeout=PATIENCE) as client:
        for _ in range(5):  # one keep-alive connection, requests well inside every deadline
            response = client.post(limited.url, content=_call_text(None, "get_tasks", "{}").encode())
            assert _result(response)["success"] is True
