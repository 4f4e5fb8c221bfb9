"""Envoy, the front door: REST and native gRPC on one port, routed per service to the apps."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from mesh import envoy_config
from scripts.platform import binaries, probes
from scripts.platform.parts.base import Part
from scripts.platform.probes import Health
from scripts.platform.processes import ProcessSpec


class Envoy(Part):
    name = "envoy"

    def _port(self, key: str) -> int:
        return int(self.cfg.get("envoy", key))

    @property
    def config_path(self) -> Path:
        return self.cfg.run_dir / "envoy.json"

    @property
    def descriptor_set(self) -> Path:
        return self.cfg.repo_path(self.cfg.get("envoy", "descriptor"))

    def probe(self) -> Health:
        return probes.http_ok(f"{self.ctx.url(self._port('admin_port'))}/ready")

    def ports(self) -> str:
        return f"{self._port('port')}, admin {self._port('admin_port')}"

    def build_config(self) -> tuple[dict[str, object], list[str]]:
        """The config dict and notes for the operator (e.g. no descriptor set yet)."""
        host, notes = self.cfg.host, []
        descriptor = self.descriptor_set if self.descriptor_set.exists() else None
        if descriptor is None:
            notes.append(f"{self.descriptor_set} missing (run scripts/gen): REST transcoding off")
        upstreams: list[envoy_config.Upstream] = []
        transcoded: list[str] = []
        for app_name, app in self.cfg.apps.items():
            packages = app.get("apis", [])
            if not packages:
                continue
            port = int(app["grpc_port"])
            if descriptor is None:  # still route native gRPC, by package
                upstreams += [envoy_config.Upstream(app_name, f"/{pkg}.", host, port) for pkg in packages]
                continue
            services = envoy_config.services_in(descriptor, packages)
            if not services:
                notes.append(f"no service of {', '.join(packages)} in {descriptor.name}: {app_name} not routed")
            upstreams += envoy_config.service_upstreams(services, host, port)
            transcoded += services
        config = envoy_config.build(
            host=host, port=self._port("port"), admin_port=self._port("admin_port"),
            upstreams=upstreams, descriptor_set=descriptor, transcoded_services=transcoded,
            access_log=bool(self.cfg.get("envoy", "access_log", True)),
        )
        return config, notes

    def write_config(self) -> tuple[str, list[str]]:
        config, notes = self.build_config()
        text = json.dumps(config, indent=2)
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text)
        digest = hashlib.sha256(text.encode())
        if self.descriptor_set.exists():  # a regenerated descriptor needs a restart too
            digest.update(self.descriptor_set.read_bytes())
        return digest.hexdigest()[:16], notes

    def argv(self, mode: str | None = None) -> list[str]:
        argv = [str(binaries.envoy()), "-c", str(self.config_path), "--concurrency", "1",
                # No shared memory for hot restart: several platforms (tests) can run side by side.
                "--disable-hot-restart", "--log-level", str(self.cfg.get("envoy", "log_level", "warn"))]
        return argv + (["--mode", mode] if mode else [])

    def validate(self) -> subprocess.CompletedProcess[str]:
        self.write_config()
        return subprocess.run(self.argv("validate"), capture_output=True, text=True, timeout=60, check=False)

    def start(self) -> str:
        digest, notes = self.write_config()
        spec = ProcessSpec(self.name, self.argv(), cwd=self.cfg.run_dir, inputs=digest,
                           stop_timeout=self.cfg.stop_timeout(self.cfg.section("envoy")))
        return "; ".join([self.ensure_process(spec), *notes])
