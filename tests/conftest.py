"""Fixtures shared by the whole suite: real conductors on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from harness import Api, ConductorProcess, login, postgres_reachable

BACKENDS = ["sqlite", "postgres"]


def _skip_without_postgres(backend: str) -> None:
    if backend == "postgres" and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432 (start it to run these tests)")


@pytest.fixture(scope="session", params=BACKENDS)
def conductor(request: pytest.FixtureRequest) -> Iterator[ConductorProcess]:
    """One running conductor per storage back end, shared by the API tests."""
    _skip_without_postgres(request.param)
    with ConductorProcess(request.param) as proc:
        yield proc.start()


@pytest.fixture(scope="session")
def admin(conductor: ConductorProcess) -> Iterator[Api]:
    with login(conductor.url, "admin", "admin") as api:
        yield api


@pytest.fixture(scope="session")
def anon(conductor: ConductorProcess) -> Iterator[Api]:
    api = Api(conductor.url)
    yield api
    api.close()


@pytest.fixture
def uid() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def fresh_conductor(tmp_path):  # type: ignore[no-untyped-def]
    """A conductor of its own (SQLite) for tests that restart or break it."""
    procs: list[ConductorProcess] = []

    def make(**kwargs):  # type: ignore[no-untyped-def]
        proc = ConductorProcess(home=kwargs.pop("home", None) or tmp_path / f"home{len(procs)}", **kwargs)
        procs.append(proc)
        return proc

    yield make
    for proc in procs:
        proc.cleanup()
