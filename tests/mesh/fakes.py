"""Stand-ins behind a real Envoy, for tests of the front door's config alone (no platform): a gRPC
server that answers every RPC with an empty message and records what reached it, an HTTP
server for webhook paths, and an ext_authz Authorization service with a fixed policy."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import types
import urllib.request
import warnings
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc

from scripts.platform import binaries
from tests.support.processes import ChildProcess


@dataclass
class Call:
    path: str
    metadata: dict[str, str]


@dataclass
class Upstream:
    """Any RPC: an empty message back (server streams: two). `x-test-fail: <code name>` in the
    metadata makes it fail with that code instead."""

    streaming_paths: frozenset[str] = frozenset()
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> grpc.GenericRpcHandler:
        upstream = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails):  # noqa: ANN201
                path = details.method
                if path in upstream.streaming_paths:
                    return grpc.unary_stream_rpc_method_handler(lambda request, context: upstream._stream(path, context))
                return grpc.unary_unary_rpc_method_handler(lambda request, context: upstream._unary(path, context))

        return Handler()

    def _record(self, path: str, context: grpc.ServicerContext) -> None:
        metadata = {key: value for key, value in context.invocation_metadata()}
        with self.lock:
            self.calls.append(Call(path, metadata))
        failure = metadata.get("x-test-fail")
        if failure:
            context.abort(grpc.StatusCode[failure.upper()], f"failing as asked: {failure}")

    def _unary(self, path: str, context: grpc.ServicerContext) -> bytes:
        self._record(path, context)
        return b""

    def _stream(self, path: str, context: grpc.ServicerContext):  # noqa: ANN202
        self._record(path, context)
        yield b""
        yield b""

    def calls_to(self, path: str) -> list[Call]:
        with self.lock:
            return [call for call in self.calls if call.path == path]


@dataclass
class Authorizer:
    """Envoy's ext_authz Authorization service, answering the way services/auth does (JSON bodies
    for REST callers, grpc-status always): `Bearer good` is client-a with scopes send,read;
    `Bearer busy` is over its limit (429, retry-after); anything else is 401."""

    paths: list[str] = field(default_factory=list)

    def handler(self) -> grpc.GenericRpcHandler:
        messages = _auth_messages()
        return grpc.method_handlers_generic_handler("envoy.service.auth.v3.Authorization", {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.check, request_deserializer=messages.CheckRequest.parse, response_serializer=bytes),
        })

    def check(self, request, context: grpc.ServicerContext):  # noqa: ANN001, ANN201
        m = _auth_messages()
        http = request.attributes.request.http
        self.paths.append(http.path)
        key = http.headers.get("authorization", "")
        if key == "Bearer good":
            return m.CheckResponse(status=m.Status(code=0), ok_response=m.OkHttpResponse(
                headers=[_header("x-chat4all-client-id", "client-a"), _header("x-chat4all-scopes", "send,read"),
                         _header("x-chat4all-key-id", "key-1")],
                headers_to_remove=["authorization"]))
        rest = "x-envoy-original-path" in http.headers or not http.headers.get("content-type", "").startswith("application/grpc")
        if key == "Bearer busy":
            status, code, message, extra = m.StatusCode.TooManyRequests, 8, "over the key's rate limit", {"retry-after": "3"}
        else:
            status, code, message, extra = m.StatusCode.Unauthorized, 16, "missing or unknown API key", {}
        headers = {"grpc-status": str(code), "grpc-message": message.replace("'", "%27"), **extra}
        if rest:
            headers["content-type"] = "application/json"
        body = json.dumps({"code": code, "message": message, "details": []}) if rest else message
        return m.CheckResponse(status=m.Status(code=code, message=message), denied_response=m.DeniedHttpResponse(
            status=m.HttpStatus(code=status), headers=[_header(k, v) for k, v in headers.items()], body=body))


def _auth_messages() -> types.SimpleNamespace:
    """Envoy's ext_authz messages (envoy-data-plane), imported quietly: its generated classes use
    a pydantic idiom pydantic warns about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from envoy_data_plane.envoy.config.core.v3 import HeaderValue, HeaderValueOption, HeaderValueOptionHeaderAppendAction
        from envoy_data_plane.envoy.service.auth.v3 import CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse
        from envoy_data_plane.envoy.type.v3 import HttpStatus, StatusCode
        from envoy_data_plane.google.rpc import Status
    return types.SimpleNamespace(**{k: v for k, v in locals().items()})


def _header(key: str, value: str):  # noqa: ANN202
    m = _auth_messages()
    return m.HeaderValueOption(header=m.HeaderValue(key=key, value=value),
                               append_action=m.HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD)


def grpc_server(port: int, *handlers: grpc.GenericRpcHandler) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(handlers)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


@dataclass
class WebhookReceiver:
    """A connector's webhook server, roughly: records each request, answers 200."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def serve(self, port: int) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append((self.command, self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@contextlib.contextmanager
def running_envoy(config: dict, work: Path) -> Iterator[ChildProcess]:
    """The real Envoy on `config`, its stdout (the access log) in work/envoy.log."""
    path = work / "envoy.json"
    path.write_text(json.dumps(config))
    envoy = ChildProcess("envoy", [str(binaries.envoy()), "-c", str(path), "--concurrency", "1",
                                   "--disable-hot-restart", "--log-level", "warn"], work)
    try:
        admin = config["admin"]["address"]["socket_address"]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{admin['address']}:{admin['port_value']}/ready", timeout=1) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                pass
            assert envoy.proc.poll() is None, envoy.log_text()
            assert time.monotonic() < deadline, envoy.log_text()
            time.sleep(0.05)
        yield envoy
    finally:
        envoy.stop()


def access_log(envoy: ChildProcess) -> list[dict]:
    """Envoy's access log lines so far (they come at the end of each request)."""
    return [json.loads(line) for line in envoy.log_text().splitlines() if line.startswith("{")]
