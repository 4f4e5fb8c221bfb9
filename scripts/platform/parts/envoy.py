"""Envoy, the front door: REST and native gRPC on one port, routed per public RPC to the apps,
the platforms' webhooks to their connectors, API keys checked by the auth app when there is
one; plus the small reflection server behind it (mesh/reflection.py), so grpcurl works through
the front door.

What it routes comes from local.toml: the services of each app's `apis` packages (read from
the descriptor set), each app's `webhook_port` (its webhook path is `/<app>/webhook`, or the
app's C4A_<APP>_WEBHOOK_PATH), and the app whose module is services.auth, if any (ext_authz).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from mesh import envoy_config
from mesh.envoy_config import Endpoint, Limits, Webhook
from scripts.platform import binaries, probes
from scripts.platform.parts.base import Part, PartError, PartStatus
from scripts.platform.probes import Health
from scripts.platform.processes import ProcessSpec

AUTH_MODULE = "services.auth"  # its Authorization service checks every call's API key


class Envoy(Part):
    name = "envoy"
    reflection_name = "envoy_reflection"

    def _port(self, key: str) -> int:
        return int(self.cfg.get("envoy", key))

    @property
    def config_path(self) -> Path:
        return self.cfg.run_dir / "envoy.json"

    @property
    def descriptor_set(self) -> Path:
        return self.cfg.repo_path(self.cfg.get("envoy", "descriptor"))

    @property
    def reflection_port(self) -> int | None:
        port = self.cfg.get("envoy", "reflection_port", 0)
        return int(port) if port else None

    @property
    def auth_app(self) -> str | None:
        """The app whose Authorization service checks API keys, if local.toml has one."""
        return next((name for name, app in self.cfg.apps.items() if app.get("module") == AUTH_MODULE), None)

    def _reflection_health(self) -> Health:
        return probes.grpc_health(f"{self.cfg.host}:{self.reflection_port}")

    def probe(self) -> Health:
        # The admin interface listens on loopback whatever the platform's host.
        ready = probes.http_ok(f"http://{envoy_config.ADMIN_HOST}:{self._port('admin_port')}/ready")
        if not ready.ok or self.reflection_port is None:
            return ready
        reflection = self._reflection_health()
        return reflection if not reflection.ok else Health(True, f"{ready.detail}; reflection {reflection.detail}")

    def ports(self) -> str:
        reflection = f", reflection {self.reflection_port}" if self.reflection_port else ""
        return f"{self._port('port')}, admin {self._port('admin_port')}{reflection}"

    def limits(self) -> Limits:
        """Limits.<field> defaults, overridden by [envoy] keys of the same name."""
        section = self.cfg.section("envoy")
        return Limits(**{f.name: section[f.name] for f in dataclasses.fields(Limits) if f.name in section})

    def public_services(self) -> dict[str, Endpoint]:
        host, routed = self.cfg.host, {}
        for app_name, app in self.cfg.apps.items():
            packages = app.get("apis", [])
            if not packages:
                continue
            services = envoy_config.services_in(self.descriptor_set, packages)
            if not services:
                raise PartError(f"envoy: [apps.{app_name}] apis {packages}: no service in {self.descriptor_set}")
            routed.update(dict.fromkeys(services, Endpoint(app_name, host, int(app["grpc_port"]))))
        return routed

    def webhooks(self) -> list[Webhook]:
        found = []
        for app_name, app in self.cfg.apps.items():
            if app.get("webhook_port"):
                path = app.get("env", {}).get(f"C4A_{app_name.upper()}_WEBHOOK_PATH", f"/{app_name}/webhook")
                endpoint = Endpoint(f"{app_name}_webhook", self.cfg.host, int(app["webhook_port"]), http2=False)
                found.append(Webhook(path, endpoint))
        return found

    def build_config(self) -> tuple[dict[str, object], list[str]]:
        """The config dict and notes for the operator."""
        if not self.descriptor_set.exists():
            raise PartError(f"envoy: {self.descriptor_set} missing: run scripts/gen")
        notes: list[str] = []
        authz = None
        if self.auth_app is not None:
            # Fails closed: while the auth app is down, every API call is refused (503).
            authz = Endpoint("ext_authz", self.cfg.host, int(self.cfg.apps[self.auth_app]["grpc_port"]))
        else:
            notes.append(f"API keys not checked: no app runs {AUTH_MODULE}")
        reflection = None
        if self.reflection_port is not None:
            reflection = Endpoint("reflection", self.cfg.host, self.reflection_port)
        config = envoy_config.build(
            host=self.cfg.host, port=self._port("port"), admin_port=self._port("admin_port"),
            descriptor_set=self.descriptor_set, services=self.public_services(), webhooks=self.webhooks(),
            authz=authz, reflection=reflection, limits=self.limits(),
            access_log=bool(self.cfg.get("envoy", "access_log", True)),
        )
        return config, notes

    def write_config(self) -> tuple[str, list[str]]:
        config, notes = self.build_config()
        text = json.dumps(config, indent=2)
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text)
        digest = hashlib.sha256(text.encode())
        digest.update(self.descriptor_set.read_bytes())  # a regenerated descriptor needs a restart too
        return digest.hexdigest()[:16], notes

    def argv(self, mode: str | None = None) -> list[str]:
        argv = [str(binaries.envoy()), "-c", str(self.config_path), "--concurrency", "1",
                # No shared memory for hot restart: several platforms (tests) can run side by side.
                "--disable-hot-restart", "--log-level", str(self.cfg.get("envoy", "log_level", "warn"))]
        return argv + (["--mode", mode] if mode else [])

    def validate(self) -> subprocess.CompletedProcess[str]:
        self.write_config()
        return subprocess.run(self.argv("validate"), capture_output=True, text=True, timeout=60, check=False)

    def reflection_spec(self, services: list[str]) -> ProcessSpec:
        argv = [sys.executable, "-m", "mesh.reflection", "--descriptor-set", str(self.descriptor_set),
                "--host", self.cfg.host, "--port", str(self.reflection_port)]
        for service in services:
            argv += ["--service", service]
        root = self.cfg.root
        path = [str(root), str(root / "gen" / "python"), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
        env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in path if p)), "PYTHONUNBUFFERED": "1"}
        digest = hashlib.sha256(self.descriptor_set.read_bytes()).hexdigest()[:16]  # what it serves
        return ProcessSpec(self.reflection_name, argv, cwd=root, env=env, inputs=digest, stop_timeout=5)

    def start(self) -> str:
        digest, notes = self.write_config()
        outcomes = []
        if self.reflection_port is not None:
            spec = self.reflection_spec(sorted(self.public_services()))
            outcomes.append(f"reflection {self.ensure_process(spec)}")
        elif self.sup.running(self.reflection_name) is not None:
            self.sup.stop(self.reflection_name)
        spec = ProcessSpec(self.name, self.argv(), cwd=self.cfg.run_dir, inputs=digest,
                           stop_timeout=self.cfg.stop_timeout(self.cfg.section("envoy")))
        return "; ".join([self.ensure_process(spec), *outcomes, *notes])

    def status(self) -> PartStatus:
        status = super().status()
        if status.origin == "ours" and self.reflection_port is not None and self.sup.running(self.reflection_name) is None:
            return dataclasses.replace(status, health=Health(False, "reflection server not running"))
        return status

    def stop(self) -> str:
        outcome = self.sup.stop(self.name)
        if self.sup.record(self.reflection_name) is not None:
            outcome += f"; reflection {self.sup.stop(self.reflection_name)}"
        return outcome
