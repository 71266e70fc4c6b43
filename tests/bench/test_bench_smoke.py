"""`cachebash bench` end to end, briefly: every workload for about a second against spawned
servers. Correctness only (report shape, zero double claims, nothing lost); speed targets
live in the benchmark itself, never in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cachebash.bench.main import run
from cachebash.bench.options import Options
from support.server import ServerProcess

pytestmark = pytest.mark.anyio

TOOL_FIGURES = {"count", "perSecond", "p50Ms", "p95Ms", "p99Ms", "maxMs", "refused"}


def _bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "cachebash.cli", "bench", *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "targets:" in done.stdout
    return dict(json.loads(out.read_text()))


def test_every_workload_reports_its_figures_and_loses_nothing(tmp_path: Path) -> None:
    report = _bench(tmp_path, "--workload", "all", "--duration", "1", "--agents", "4", "--preload", "300",
                    "--race-tasks", "25")
    assert report["baseline"]["requestsPerSecond"] > 0 and report["client"] == "lean"
    work = report["workloads"]
    assert set(work) == {"dispatch", "race", "relay", "scale"}, "waiters runs only when named"

    dispatch = work["dispatch"]
    assert set(dispatch["tools"]) == {"create_task", "get_tasks", "claim_task", "complete_task"}
    assert all(set(t) == TOOL_FIGURES for t in dispatch["tools"].values())
    assert dispatch["tasksCompleted"] > 0 and dispatch["doubleClaims"] == 0

    race = work["race"]
    assert race["tasks"] == 25 and race["claimAttempts"] == 25 * 4
    assert race["claimsWon"] == 25 and race["doubleClaims"] == 0 and race["lostTasks"] == 0

    relay = work["relay"]
    assert relay["messagesSent"] > 0 and relay["messagesLost"] == 0
    assert relay["sendToReceive"]["p50Ms"] is not None
    waiting = relay["sendToReceiveWaiting"]
    assert waiting["messagesSent"] > 0 and waiting["messagesLost"] == 0 and waiting["p50Ms"] is not None

    scale = work["scale"]
    assert set(scale["phases"]) == {"300"}, "a preload below 1,000 is measured once"
    assert scale["phases"]["300"]["get_tasks"]["count"] > 0
    assert all(w["server"]["peakRssMb"] > 0 for w in work.values())
    assert {t["target"].split(":")[0] for t in report["targets"]} >= {"race"}


async def test_the_official_client_as_agents() -> None:
    report = await run(Options(workloads=("dispatch",), agents=3, duration=1, client="sdk"))
    dispatch = report["workloads"]["dispatch"]
    assert dispatch["tasksCompleted"] > 0 and dispatch["doubleClaims"] == 0
    assert report["baseline"]["client"] == "sdk"


def test_a_running_server_by_url(tmp_path: Path) -> None:
    """--url: keys come from the admin key in the file, tasks are preloaded over MCP, and a
    server started without the bench routes still gets measured (no baseline)."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        keys = tmp_path / "keys.txt"
        keys.write_text(f"{server.admin_key}\n")
        report = _bench(tmp_path, "--url", server.url, "--keys", str(keys), "--workload", "race", "--agents", "3",
                        "--race-tasks", "10", "--duration", "1")
    finally:
        server.stop()
    assert report["baseline"]["requestsPerSecond"] is None and "CACHEBASH_BENCH_ROUTES" in report["baseline"]["note"]
    race = report["workloads"]["race"]
    assert race["claimsWon"] == 10 and race["doubleClaims"] == 0 and race["lostTasks"] == 0


def test_waiters_compares_plain_calls_with_and_without_waiting_calls(tmp_path: Path) -> None:
    """Not part of `all` (it holds calls open for their whole wait); every waiter is released."""
    report = _bench(tmp_path, "--workload", "waiters", "--waiters", "12", "--wait-seconds", "2", "--duration", "1",
                    "--agents", "2")
    waiters = report["workloads"]["waiters"]
    assert (waiters["waiters"], waiters["waitSeconds"], waiters["agents"]) == (12, 2, 2)
    assert all(waiters[phase]["count"] > 0 for phase in ("withoutWaiters", "withWaiters", "afterWaiters"))
    assert waiters["p99Ratio"] == round(waiters["withWaiters"]["p99Ms"] / waiters["withoutWaiters"]["p99Ms"], 2)
    assert waiters["signals"]["waitingCalls"] >= 11, "the timed phase ran with (nearly) every waiter waiting"
    assert waiters["waitersReleased"] == 12 and waiters["waiterErrors"] == 0
    assert any(t["target"].startswith("waiters: plain-call p99") for t in report["targets"])


def test_coldstart_times_fresh_function_processes(tmp_path: Path) -> None:
    """Not part of `all` (it starts Google's emulator and a dozen processes); no echo baseline,
    its own baseline (a bare functions-framework target) instead. Shape only, never speed."""
    from cachebash.cloud_local.emulators import missing

    if why := missing(need_pubsub=False):
        pytest.skip(why)
    report = _bench(tmp_path, "--workload", "coldstart", "--coldstart-runs", "1")
    assert report["baseline"]["requestsPerSecond"] is None
    cold = report["workloads"]["coldstart"]
    assert cold["runs"] == 1
    for figure in ("baseline", "storeClient", "health", "toolCall"):
        assert len(cold[figure]["allS"]) == 1 and cold[figure]["medianS"] > 0
    assert {t["target"].split(" <=")[0] for t in report["targets"]} == {
        "coldstart: process start to first tools/call 200", "coldstart: process start to first /health 200"}


def test_usage_equals_a_recount_of_the_tasks_after_a_mixed_run(tmp_path: Path) -> None:
    """dispatch (workers report tokens and cost) and race against one server, then every figure
    get_usage gives for the tenant is recounted from the tasks the run left behind."""
    from cachebash.adapters.sqlite_store import SqliteStore
    from cachebash.bootstrap import embedded_runtime
    from cachebash.domain.usage import GetUsage
    from cachebash.ports.clock import SystemClock
    from cachebash.services.owner_tasks import owner_caller
    from cachebash.services.usage_report import get_usage
    from support.usage_recount import mismatches, recount

    server = ServerProcess(tmp_path / "data").start()
    try:
        keys = tmp_path / "keys.txt"
        keys.write_text(f"{server.admin_key}\n")
        for workload in ("dispatch", "race"):
            _bench(tmp_path, "--url", server.url, "--keys", str(keys), "--workload", workload, "--agents", "4",
                   "--race-tasks", "20", "--duration", "1")
    finally:
        server.stop()
    rt = embedded_runtime(SqliteStore(tmp_path / "data" / "cachebash.db"), SystemClock())
    try:
        answer = get_usage(rt, owner_caller("default"), GetUsage(period="7d"))
        expected = recount(rt.store, "default")
    finally:
        rt.store.close()
    rows = {row["key"]: row for row in answer["rows"]}
    assert mismatches(rows, expected) == []
    assert answer["totals"]["completed"] > 20 and answer["totals"]["tokensIn"] > 0
    assert answer["totals"]["attempts"] >= answer["totals"]["completed"]


def test_the_rate_limit_cost_table_counts_every_admitted_call() -> None:
    """`python -m cachebash.bench.rate_limit_costs` (the README's table): a key at its rate is
    admitted at its rate, a flood at the rate only, and a busy key costs far less than a slow one."""
    from cachebash.bench.rate_limit_costs import Traffic, measure

    at_rate, flood = measure(Traffic("", "free", 2)), measure(Traffic("", "free", 20))
    assert at_rate["admittedPerSecond"] == pytest.approx(2, rel=0.01)
    assert flood["admittedPerSecond"] == pytest.approx(2 + 60 / 120, rel=0.02)  # the rate, and the burst once
    assert measure(Traffic("", "self-hosted", 500))["perCall"] < 0.01 < measure(Traffic("", "free", 0.2))["perCall"]
