"""Fixtures every connector module shares; each module provides its own `emulator`."""

from __future__ import annotations

import pytest

from tests.support.file_service import running_file_service


@pytest.fixture
async def no_faults(emulator):
    """The emulator's injected faults are cleared after the test, so they never reach the next one."""
    yield
    await emulator.clear_faults()


@pytest.fixture
async def file_service(postgres_dsn, s3_server):
    """A FileService of the test's own (its own database; the session's S3) for connectors to import media into."""
    async with running_file_service(postgres_dsn, s3_server) as service:
        yield service
