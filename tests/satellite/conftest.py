"""Fixtures for the satellite tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from http_peer import PeerServer
from sat_peer import FakeConductor


@pytest.fixture
async def conductor() -> AsyncIterator[FakeConductor]:
    fake = await FakeConductor().start()
    yield fake
    await fake.stop()


@pytest.fixture
def http_peer() -> Iterator[PeerServer]:
    """A real HTTP server thread standing in for remote sites and the conductor's file endpoints."""
    with PeerServer() as server:
        yield server
