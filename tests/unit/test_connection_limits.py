"""The connection limits' own rules (the deadlines themselves are tested on a real server in
tests/e2e/test_http_hardening.py)."""

from __future__ import annotations

import resource

import pytest

from cachebash.interface.connection_limits import FD_RESERVE, ConnectionLimits, protocol_class


def test_the_cap_is_lowered_to_fit_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 4096))
    assert ConnectionLimits(max_connections=512).fitted_to_fd_limit().max_connections == 256 - FD_RESERVE
    assert ConnectionLimits(max_connections=100).fitted_to_fd_limit().max_connections == 100
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert ConnectionLimits(max_connections=512).fitted_to_fd_limit().max_connections == 512


@pytest.mark.parametrize("broken", [{"idle_seconds": 0}, {"head_seconds": -1}, {"body_seconds": 0.0},
                                    {"max_connections": 0}, {"max_head_bytes": 0}])
def test_limits_that_would_refuse_everything_are_refused(broken: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ConnectionLimits(**broken)  # type: ignore[arg-type]


def test_each_server_gets_its_own_protocol_class() -> None:
    a, b = protocol_class(ConnectionLimits(idle_seconds=1)), protocol_class(ConnectionLimits(idle_seconds=2))
    assert a.limits.idle_seconds == 1 and b.limits.idle_seconds == 2  # type: ignore[attr-defined]
