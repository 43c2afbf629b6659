"""Fixtures for the fleet tests: one real conductor (with its local satellite) shared by the folder.

It listens on 127.0.0.1 only, so a second conductor can take the same port on 127.0.0.2 for
the redirect test, and calls itself ``127.0.0.1`` so that the host list it hands to agents
is reachable from them. Keepalive is fast (1 s echoes, 4 s timeout) so silence is noticed quickly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fleet_peer import SECRET

from harness import Api, ConductorProcess, login

FLEET_SETTINGS = {"WebServer.bind_address": "127.0.0.1", "hostname": "127.0.0.1", "ping_freq_sec": 1,
                  "ping_timeout_sec": 4, "local_satellite.enabled": True}


@pytest.fixture(scope="session")
def fleet_conductor() -> Iterator[ConductorProcess]:
    with ConductorProcess(env={"SUNDIAL_secret_key": SECRET}, settings=FLEET_SETTINGS) as proc:
        yield proc.start(timeout=60)


@pytest.fixture(scope="session")
def fleet_admin(fleet_conductor: ConductorProcess) -> Iterator[Api]:
    with login(fleet_conductor.url, "admin", "admin") as api:
        yield api


@pytest.fixture
def ws_url(fleet_conductor: ConductorProcess) -> str:
    return f"ws://127.0.0.1:{fleet_conductor.port}/"
