"""Chat4All processes for end-to-end tests: each service a real subprocess on a
free port, all sharing the test's own database, Kafka broker and Redis."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.ports import free_port
from tests.support.processes import ChildProcess


class Service:
    def __init__(self, name: str, module: str, port: int, process: ChildProcess) -> None:
        self.name, self.module, self.port, self.process = name, module, port, process

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def wait_serving(target: str, process: ChildProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{process.name} exited with {process.proc.returncode}:\n{process.log_text()[-3000:]}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{process.name} not SERVING after {timeout:.0f}s:\n{process.log_text()[-3000:]}")
            time.sleep(0.1)


class Stack:
    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = {
            "C4A_METRICS_PORT": "0",
            "C4A_SHUTDOWN_GRACE_SECONDS": "5",
            "C4A_KAFKA_SESSION_TIMEOUT_MS": "1500",
            "C4A_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            **env,
        }
        self.services: dict[str, Service] = {}

    def start(self, name: str, module: str, env: dict[str, str] | None = None, port: int | None = None) -> Service:
        port = port or free_port()
        process = ChildProcess(
            f"{name}-{port}",
            [sys.executable, "-m", module],
            self.log_dir,
            env={**self.env, "C4A_SERVICE_NAME": name, "C4A_GRPC_PORT": str(port), **(env or {})},
        )
        service = Service(name, module, port, process)
        self.services[name] = service
        wait_serving(service.target, process)
        return service

    def stop(self, name: str) -> None:
        self.services.pop(name).process.stop()

    def stop_all(self) -> None:
        for name in reversed(list(self.services)):
            self.stop(name)
