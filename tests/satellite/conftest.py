"""Fixtures for the satellite tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sat_peer import FakeConductor


@pytest.fixture
async def conductor() -> AsyncIterator[FakeConductor]:
    fake = await FakeConductor().start()
    yield fake
    await fake.stop()
