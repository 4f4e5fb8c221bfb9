"""The supervisor: starts detached processes and finds them again from their pid records.

Each process runs in its own session (so a Ctrl-C in the terminal that ran `up` does not reach
it, and stopping its process group also stops its children), logs to var/log/<name>.log and is
recorded in var/run/<name>.pid. The record keeps the kernel's start time of the process, so a
pid reused by an unrelated process after a reboot or crash is never mistaken for ours, and a
fingerprint of its command line and environment, so `up` can tell when its config changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

_TICK = 0.1


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)  # set on top of the inherited environment
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 20.0
    inputs: str = ""  # e.g. a digest of a generated config file, so its change counts too

    def fingerprint(self) -> str:
        text = json.dumps([self.argv, sorted(self.env.items()), str(self.cwd), self.inputs])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PidRecord:
    pid: int
    started: int  # field 22 of /proc/<pid>/stat: start time in clock ticks after boot
    fingerprint: str = ""
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 20.0
    own_session: bool = True  # False for adopted processes (the postmaster that pg_ctl forks)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of a live process, None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces
    return fields[0], int(fields[19])


class Supervisor:
    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def record(self, name: str) -> PidRecord | None:
        try:
            return PidRecord(**json.loads(self._pid_path(name).read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _alive(self, record: PidRecord) -> bool:
        child = self._children.get(record.pid)
        if child is not None and child.poll() is not None:  # reaps our own zombie
            return False
        stat = _proc_stat(record.pid)
        return stat is not None and stat[0] not in ("Z", "X") and stat[1] == record.started

    def running(self, name: str) -> PidRecord | None:
        """The record of a live process of ours named `name`, else None."""
        record = self.record(name)
        return record if record is not None and self._alive(record) else None

    def exit_code(self, name: str) -> int | None:
        """Exit code of a process this supervisor started and that has ended."""
        record = self.record(name)
        child = self._children.get(record.pid) if record else None
        return child.poll() if child else None

    def start(self, spec: ProcessSpec) -> PidRecord:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(spec.name), "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {stamp} starting {spec.name}: {' '.join(spec.argv)}\n".encode())
            log.flush()
            child = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[child.pid] = child
        stat = _proc_stat(child.pid)
        record = PidRecord(
            pid=child.pid,
            started=stat[1] if stat else 0,
            fingerprint=spec.fingerprint(),
            stop_signal=int(spec.stop_signal),
            stop_timeout=spec.stop_timeout,
        )
        self._write(spec.name, record)
        return record

    def adopt(self, name: str, pid: int, **fields: object) -> PidRecord:
        """Record a process that something else started (pg_ctl's postmaster)."""
        stat = _proc_stat(pid)
        record = PidRecord(pid=pid, started=stat[1] if stat else 0, own_session=False, **fields)  # type: ignore[arg-type]
        self._write(name, record)
        return record

    def _write(self, name: str, record: PidRecord) -> None:
        tmp = self._pid_path(name).with_suffix(".tmp")
        tmp.write_text(json.dumps(record.__dict__))
        tmp.replace(self._pid_path(name))

    def forget(self, name: str) -> None:
        self._pid_path(name).unlink(missing_ok=True)

    def _signal(self, record: PidRecord, sig: int) -> None:
        try:
            if record.own_session:
                os.killpg(record.pid, sig)  # the whole session's group: children too
            else:
                os.kill(record.pid, sig)
        except ProcessLookupError:
            pass

    def wait_gone(self, record: PidRecord, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(record):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_TICK)
        return True

    def stop(self, name: str, timeout: float | None = None) -> str:
        """Stop `name`: its stop signal, then SIGKILL after the timeout. Says what happened."""
        record = self.running(name)
        if record is None:
            self.forget(name)
            return "not running"
        self._signal(record, record.stop_signal)
        outcome = "stopped"
        if not self.wait_gone(record, record.stop_timeout if timeout is None else timeout):
            self._signal(record, signal.SIGKILL)
            outcome = "killed after timeout"
            if not self.wait_gone(record, 10):
                return f"pid {record.pid} survived SIGKILL"
        self.forget(name)
        return outcome
