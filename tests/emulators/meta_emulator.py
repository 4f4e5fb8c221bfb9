"""Starting a Meta emulator (WhatsApp or Instagram) for its tests, and calling its control API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.emulators.meta_receiver import MetaWebhookReceiver
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import ChildProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
# The emulators' local defaults: the tests check that these are what they accept and sign with.
TOKEN = "local-access-token"
APP_SECRET = "local-app-secret"
VERIFY_TOKEN = "local-verify-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start_meta_emulator(log_dir: Path, platform: str, name: str, seed: int, *extra: str,
                        env: dict[str, str] | None = None, port: int | None = None) -> tuple[ChildProcess, str]:
    """`python -m connectors.emulators.<platform>` with quick webhook retries; its port comes from
    the command line unless `env` sets C4A_EMULATOR_PORT (a test of the environment settings)."""
    port = port or free_port()
    argv = [sys.executable, "-m", f"connectors.emulators.{platform}", "--host", "127.0.0.1", "--seed", str(seed),
            "--webhook-initial-backoff", "0.2", "--webhook-max-attempts", "4", *extra]
    if env is None or "C4A_EMULATOR_PORT" not in env:
        argv += ["--port", str(port)]
    process = ChildProcess(name, argv, log_dir, env=env, cwd=REPO_ROOT)
    try:
        wait_for_port(port, timeout=20)
    except TimeoutError:
        process.stop()
        raise AssertionError(f"the emulator did not start:\n{process.log_text()}") from None
    return process, f"http://127.0.0.1:{port}"


async def control(http: aiohttp.ClientSession, base: str, verb: str, path: str, body: Any = None,
                  expect: int = 200) -> dict[str, Any]:
    """A call to the emulator's control API (/_emulator/...), asserting its status."""
    async with http.request(verb, f"{base}/_emulator/{path}", json=body) as response:
        payload = await response.json()
        assert response.status == expect, payload
        return payload


# Fixtures of both Meta emulator test modules (each provides its own `emulator`, the base URL).


@pytest.fixture
async def http(emulator: str) -> Any:
    """A client session, with the emulator reset to a clean state for the test."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emulator}/_emulator/reset") as response:
            assert response.status == 200
        yield session


@pytest.fixture
async def receiver(http: aiohttp.ClientSession, emulator: str) -> Any:
    """A signed-webhook receiver subscribed for the test (Meta's handshake first)."""
    hook = await MetaWebhookReceiver(APP_SECRET, VERIFY_TOKEN).start()
    try:
        await control(http, emulator, "PUT", "subscription", {"callback_url": hook.url, "verify_token": VERIFY_TOKEN})
        yield hook
    finally:
        await control(http, emulator, "DELETE", "subscription")
        await hook.stop()
