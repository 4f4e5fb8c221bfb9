"""Fixtures every connector module shares; each module provides its own `emulator`."""

from __future__ import annotations

import pytest


@pytest.fixture
async def no_faults(emulator):
    """The emulator's injected faults are cleared after the test, so they never reach the next one."""
    yield
    await emulator.clear_faults()
