"""The Kafka-protocol broker (tansu), keeping its log in a SeaweedFS bucket so it survives restarts."""

from __future__ import annotations

import asyncio
import logging

from scripts.platform import binaries, probes
from scripts.platform.config import ConfigError
from scripts.platform.parts.base import Part
from scripts.platform.probes import Health
from scripts.platform.processes import ProcessSpec

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class Kafka(Part):
    name = "kafka"

    @property
    def port(self) -> int:
        return int(self.cfg.get("kafka", "port"))

    @property
    def bootstrap(self) -> str:
        return f"{self.cfg.host}:{self.port}"

    def probe(self) -> Health:
        return probes.kafka(self.bootstrap)

    def ports(self) -> str:
        return str(self.port)

    def storage_engine(self) -> str:
        storage = self.cfg.get("kafka", "storage", "s3")
        if storage == "memory":
            return "memory://tansu/"  # fast, and gone at every restart
        if storage != "s3":
            raise ConfigError(f"[kafka] storage must be \"s3\" or \"memory\", not {storage!r}")
        return f"s3://{self.cfg.get('kafka', 'bucket')}/"

    def start(self) -> str:
        s3 = self.cfg.section("seaweedfs")
        data = self.cfg.data_dir / "kafka"  # tansu keeps nothing locally; a tidy working directory
        data.mkdir(parents=True, exist_ok=True)
        listener = f"tcp://{self.bootstrap}"
        argv = [
            str(binaries.tansu()), "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", self.storage_engine(),
        ]
        env = {
            "AWS_ACCESS_KEY_ID": s3["access_key"],
            "AWS_SECRET_ACCESS_KEY": s3["secret_key"],
            "AWS_DEFAULT_REGION": s3.get("region", "us-east-1"),
            "AWS_ENDPOINT": self.ctx.url(int(s3["s3_port"])),
            "AWS_ALLOW_HTTP": "true",
        }
        spec = ProcessSpec(self.name, argv, cwd=data, env=env,
                           stop_timeout=self.cfg.stop_timeout(self.cfg.section("kafka")))
        return self.ensure_process(spec)

    def after_ready(self) -> None:
        topics = {name: int(partitions) for name, partitions in self.cfg.get("kafka", "topics", {}).items()}
        if topics:
            asyncio.run(self._create_topics(topics))

    async def _create_topics(self, topics: dict[str, int]) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [NewTopic(name, n, 1) for name, n in topics.items() if name not in existing]
            if not wanted:
                return
            response = await admin.create_topics(wanted)
            for topic, code, message in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise self.failure(f"cannot create topic {topic}: error {code} {message}")
        finally:
            await admin.close()
