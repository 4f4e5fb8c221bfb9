"""End-to-end benchmark of the send path on the local platform.

    .venv/bin/python -m bench.run [--rates 100,500,1000] [--seconds 30] [--storage memory|s3]

It starts its own platform (platformctl on free ports, its own database), so a developer's
running platform is untouched, and stops it at the end.

Measures, in one run on this machine:
- the bare gRPC echo rate of one Python process (the ceiling to read the rest against);
- the broker's own acknowledgement latency (acks=all) at each offered rate;
- for each offered rate over 200 conversations (internal sender -> Telegram recipient):
  SendMessage latency (k6, outside the services), the sustained end-to-end rate, and
  send -> emulator-received latency (each text carries its send time).
Load comes from k6 and the emulator; results go to bench/results/ and stdout as markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import grpc
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.users.v1 import service_pb2_grpc as user_grpc

from scripts.platform import binaries
from tests.support.platform import running_platform
from tests.support.ports import free_port
from tests.support.scenarios import platform_conversations

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else float("nan")


async def make_conversations(apps: dict, count: int) -> list[dict]:
    users = user_grpc.UserServiceStub(grpc.aio.insecure_channel(f"127.0.0.1:{apps['users']['grpc_port']}"))
    conversations = conversation_grpc.ConversationServiceStub(
        grpc.aio.insecure_channel(f"127.0.0.1:{apps['conversations']['grpc_port']}")
    )
    return await platform_conversations(users, conversations, count)


def bench_platform(storage: str):
    def customize(raw: dict) -> None:
        raw["kafka"]["storage"] = storage
        raw["envoy"]["access_log"] = False
        for app in raw["apps"].values():
            app.setdefault("env", {})["C4A_LOG_LEVEL"] = "WARNING"  # one line per RPC costs CPU
        # Chat4All is measured, not Telegram's per-chat and per-bot limits.
        raw["apps"]["telegram"]["env"].update({
            "C4A_TELEGRAM_PRIVATE_CHAT_PER_SECOND": "1000", "C4A_TELEGRAM_PRIVATE_CHAT_BURST": "1000",
            "C4A_TELEGRAM_BOT_PER_SECOND": "100000", "C4A_TELEGRAM_BOT_BURST": "100000",
        })

    return running_platform(customize)


def echo_rps(seconds: int) -> dict:
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(BENCH / "echo_server.py"), "--port", str(port)])
    try:
        time.sleep(1.5)
        summary = RESULTS / "echo-summary.json"
        subprocess.run(
            ["taskset", "-c", "1", str(binaries.k6()), "run", "-q", "--summary-export", str(summary),
             "-e", f"TARGET=127.0.0.1:{port}", "-e", f"DURATION={seconds}s", str(BENCH / "echo.js")],
            check=True, capture_output=True,
        )
        metrics = json.loads(summary.read_text())["metrics"]
        return {"rps": round(metrics["iterations"]["rate"]), "p99_ms": round(metrics["grpc_req_duration"]["p(99)"], 2)}
    finally:
        server.terminate()
        server.wait()


def broker_ack(bootstrap: str, rate: int, seconds: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(BENCH / "broker_ack.py"), "--bootstrap", bootstrap, "--rate", str(rate), "--seconds", str(seconds)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


async def emulator(session: aiohttp.ClientSession, base: str, method: str, path: str, body=None):
    async with session.request(method, f"{base}/_emulator/{path}", json=body) as response:
        response.raise_for_status()
        return await response.json()


async def deliveries(session, base: str, run_tag: str, expected: int, wait: float) -> list[dict]:
    """The emulator's record of this phase's sends, once all arrived (or the wait ran out)."""
    deadline = time.monotonic() + wait
    while True:
        records = await emulator(session, base, "GET", "requests?method=sendMessage&limit=1000000")
        mine = [r for r in records["requests"] if str(r["params"].get("text", "")).startswith(run_tag)]
        if len(mine) >= expected or time.monotonic() > deadline:
            return mine
        await asyncio.sleep(0.5)


def offered_load(apps: dict, conversations_file: Path, rate: int, seconds: int, tag: str) -> dict:
    summary = RESULTS / f"send-{rate}-summary.json"
    subprocess.run(
        [str(binaries.k6()), "run", "-q", "--summary-export", str(summary),
         "-e", f"TARGET=127.0.0.1:{apps['messaging']['grpc_port']}", "-e", f"RATE={rate}",
         "-e", f"DURATION={seconds}s", "-e", f"RUN={tag}", "-e", f"CONVERSATIONS={conversations_file}",
         "-e", f"VUS={max(20, rate // 10)}", str(BENCH / "send.js")],
        check=True, capture_output=True,
    )
    metrics = json.loads(summary.read_text())["metrics"]
    api = metrics["grpc_req_duration"]
    checks = metrics["checks"]
    return {
        "sent": metrics["iterations"]["count"],
        "accepted": checks["passes"],
        "refused": checks["fails"],
        "api_p50_ms": round(api["p(50)"], 1),
        "api_p95_ms": round(api["p(95)"], 1),
        "api_p99_ms": round(api["p(99)"], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--storage", choices=["memory", "s3"], default="memory")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    with bench_platform(args.storage) as platform:
        platform.check("up", timeout=300)
        await measure(args, platform.raw)


async def measure(args, raw: dict) -> None:
    apps = raw["apps"]
    emulator_base = f"http://127.0.0.1:{apps['telegram_emulator']['http_port']}"
    bootstrap = f"127.0.0.1:{raw['kafka']['port']}"
    conversations = await make_conversations(apps, args.conversations)
    conversations_file = RESULTS / "conversations.json"
    conversations_file.write_text(json.dumps(conversations))
    result = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "conversations": args.conversations,
              "seconds": args.seconds, "storage": args.storage}
    result["echo"] = echo_rps(10)
    result["phases"] = []
    async with aiohttp.ClientSession() as session:
        # The benchmark measures Chat4All, not Telegram's per-chat limits.
        await emulator(session, emulator_base, "PUT", "limits", {"enabled": False})
        for rate in (int(r) for r in args.rates.split(",")):
            ack = broker_ack(bootstrap, rate, min(args.seconds, 10))
            tag = f"bench-{uuid.uuid4().hex[:6]}"
            started = time.time()
            phase = offered_load(apps, conversations_file, rate, args.seconds, tag)
            received = await deliveries(session, emulator_base, tag, phase["accepted"], wait=120)
            latencies = [r["received_at"] * 1000 - int(r["params"]["text"].split()[1]) for r in received]
            times = sorted(r["received_at"] for r in received)
            span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
            phase.update({
                "rate": rate,
                "broker_ack_p50_ms": ack["p50_ms"], "broker_ack_p99_ms": ack["p99_ms"],
                "delivered": len(received),
                "e2e_msgs_per_s": round(len(received) / span, 1) if span == span and span > 0 else None,
                "delivery_p50_ms": percentile(latencies, 0.50),
                "delivery_p95_ms": percentile(latencies, 0.95),
                "delivery_p99_ms": percentile(latencies, 0.99),
                "wall_s": round(time.time() - started, 1),
            })
            result["phases"].append(phase)
            print(json.dumps(phase), flush=True)
    (RESULTS / f"run-{args.storage}-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        f"Broker storage: {result['storage']}. Bare gRPC echo (one Python process, one core): {result['echo']['rps']} calls/s.",
        "",
        "| offered msg/s | accepted | delivered | e2e msg/s | API p50/p95/p99 ms | broker ack p50/p99 ms | delivery p50/p95/p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in result["phases"]:
        lines.append(
            f"| {p['rate']} | {p['accepted']}/{p['sent']} | {p['delivered']} | {p['e2e_msgs_per_s']} | "
            f"{p['api_p50_ms']}/{p['api_p95_ms']}/{p['api_p99_ms']} | {p['broker_ack_p50_ms']}/{p['broker_ack_p99_ms']} | "
            f"{p['delivery_p50_ms']}/{p['delivery_p95_ms']}/{p['delivery_p99_ms']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(main())
