"""The broker's own acknowledgement latency (acks=all, same producer settings as the
API) at a fixed offered rate: the baseline the API's latency is read against."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from services.runtime import kafka
from services.runtime.config import load_settings


async def measure(bootstrap: str, topic: str, rate: int, seconds: float, size: int) -> dict:
    settings = load_settings(kafka_bootstrap=bootstrap)
    await kafka.ensure_topics(bootstrap, {topic: 8})
    producer = await kafka.open_producer(settings)
    latencies: list[float] = []
    payload = b"x" * size

    async def one(key: bytes) -> None:
        started = time.perf_counter()
        await producer.send_and_wait(topic, payload, key=key)
        latencies.append((time.perf_counter() - started) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        # Open-loop: send on schedule whatever the previous sends are doing.
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(str(i % 200).encode())))
    await asyncio.gather(*tasks)
    await producer.stop()
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)  # noqa: E731
    return {"rate": rate, "count": len(latencies), "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--size", type=int, default=300)
    args = parser.parse_args()
    topic = f"bench.broker-ack.{uuid.uuid4().hex[:8]}"
    print(json.dumps(asyncio.run(measure(args.bootstrap, topic, args.rate, args.seconds, args.size))))
