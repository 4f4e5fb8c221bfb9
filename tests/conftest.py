"""Fixtures on the real parts: the machine's PostgreSQL (own database per test
session), a tansu Kafka-protocol broker of our own on a free port."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest

from scripts.platform import binaries
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import ChildProcess
from tests.support.seaweedfs import seaweedfs_s3

ADMIN_DSN = os.environ.get("C4A_TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture
def postgres_dsn() -> str:
    """A fresh database on the shared server, dropped afterwards."""
    name = f"c4a_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def kafka_bootstrap(log_dir) -> str:
    """A tansu broker of our own, in memory: fast, and gone when the session ends."""
    port = free_port()
    broker = ChildProcess(
        "tansu",
        [
            str(binaries.tansu()),
            "broker",
            "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
            "--storage-engine", "memory://tansu/",
        ],
        log_dir,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory, log_dir):
    """SeaweedFS of the session's own, started for the first test that needs S3."""
    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs"), log_dir) as server:
        yield server
