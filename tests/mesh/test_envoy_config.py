"""The front door's Envoy config, checked by the real Envoy: `envoy --mode validate` on each shape
of it, and requests through Envoy to stand-ins (tests/mesh/fakes.py) for the services, the auth
service and a connector's webhook server. No platform: seconds, not minutes."""

from __future__ import annotations

import json
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from mesh import envoy_config
from mesh.envoy_config import Endpoint, Limits, Webhook
from mesh.reflection import server as reflection_server
from mesh.rpcs import rpcs_of, services_in
from scripts.platform import binaries
from scripts.platform import config as platform_config
from scripts.platform.parts.envoy import AUTH_MODULE, Envoy
from scripts.platform.stack import Stack
from tests.mesh.fakes import Authorizer, Upstream, WebhookReceiver, access_log, grpc_server, running_envoy
from tests.support.platform import ROOT, toml_dumps
from tests.support.ports import free_port, free_ports

DESCRIPTOR = ROOT / "gen" / "descriptors" / "chat4all.binpb"
PACKAGES = ["chat4all.messaging.v1", "chat4all.conversations.v1", "chat4all.users.v1", "chat4all.files.v1",
            "chat4all.webhooks.v1", "chat4all.auth.v1"]
SERVICES = services_in(DESCRIPTOR, PACKAGES)
RPCS = rpcs_of(DESCRIPTOR, SERVICES)
GET_USER = "/chat4all.users.v1.UserService/GetUser"
CREATE_USER = "/chat4all.users.v1.UserService/CreateUser"
APPLY_USER_MERGE = "/chat4all.conversations.v1.ConversationService/ApplyUserMerge"
MiB = 1024 * 1024


def config(*, port: int = 18080, admin_port: int = 18901, host: str = "127.0.0.1", upstream_port: int = 18201,
           authz: Endpoint | None = None, reflection: Endpoint | None = None,
           webhooks: list[Webhook] | None = None) -> dict[str, Any]:
    return envoy_config.build(
        host=host, port=port, admin_port=admin_port, descriptor_set=DESCRIPTOR,
        services=dict.fromkeys(SERVICES, Endpoint("api", "127.0.0.1", upstream_port)),
        webhooks=webhooks or [], authz=authz, reflection=reflection,
    )


def validate(config: dict[str, Any], work: Path) -> None:
    path = work / "envoy.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([str(binaries.envoy()), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                           "--log-level", "warn"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    return _manager(config)["route_config"]["virtual_hosts"][0]["routes"]


def _manager(config: dict[str, Any]) -> dict[str, Any]:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


# The config itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("with_auth", [False, True], ids=["without auth", "with auth"])
def test_every_shape_of_the_config_validates(tmp_path: Path, with_auth: bool) -> None:
    webhook = Webhook("/whatsapp/webhook", Endpoint("whatsapp_webhook", "127.0.0.1", 18413, http2=False))
    validate(config(authz=Endpoint("ext_authz", "127.0.0.1", 18206) if with_auth else None,
                    reflection=Endpoint("reflection", "127.0.0.1", 18902), webhooks=[webhook], host="0.0.0.0"), tmp_path)
    validate(config(authz=Endpoint("ext_authz", "127.0.0.1", 18206) if with_auth else None), tmp_path)


@pytest.mark.parametrize("with_auth", [False, True], ids=["without an auth app", "with an auth app"])
def test_the_local_platform_config_validates(tmp_path: Path, with_auth: bool) -> None:
    raw = tomllib.loads(platform_config.DEFAULT_CONFIG.read_text())
    raw["apps"] = {name: app for name, app in raw["apps"].items() if app.get("module") != AUTH_MODULE}
    if with_auth:
        raw["apps"]["auth"] = {"module": AUTH_MODULE, "grpc_port": 18206, "apis": ["chat4all.auth.v1"]}
    path = tmp_path / "local.toml"
    path.write_text(toml_dumps(raw))
    envoy = next(part for part in Stack(platform_config.load(path, tmp_path / "var")).parts if isinstance(part, Envoy))
    done = envoy.validate()
    assert done.returncode == 0, done.stdout + done.stderr
    generated = json.loads(envoy.config_path.read_text())
    filters = [f["name"] for f in _manager(generated)["http_filters"]]
    assert (envoy_config.EXT_AUTHZ in filters) == with_auth
    apis = [pkg for app in raw["apps"].values() for pkg in app.get("apis", [])]
    public = {rpc.path for rpc in rpcs_of(DESCRIPTOR, services_in(DESCRIPTOR, apis)) if rpc.public}
    assert {route["match"]["path"] for route in routes(generated) if route["match"].get("path", "").startswith("/chat4all.")} == public
    webhook_paths = {route["match"]["path"] for route in routes(generated) if route["name"].startswith("webhook")}
    assert webhook_paths == {f"/{name}/webhook" for name, app in raw["apps"].items() if app.get("webhook_port")}


def test_only_public_rpcs_have_a_route() -> None:
    by_path = {route["match"].get("path"): route for route in routes(config())}
    public = {rpc.path for rpc in RPCS if rpc.public}
    assert public and {path for path in by_path if path and path.startswith("/chat4all.")} == public
    assert APPLY_USER_MERGE not in by_path  # internal: no required_scope
    assert routes(config())[-1]["direct_response"]["status"] == 404  # everything else


def test_timeouts_and_retries_follow_what_each_rpc_is() -> None:
    by_path = {route["match"]["path"]: route["route"] for route in routes(config()) if "path" in route["match"]}
    retried = set()
    for rpc in (rpc for rpc in RPCS if rpc.public):
        action = by_path[rpc.path]
        if rpc.streaming:
            assert (action["timeout"], action["idle_timeout"]) == ("0s", "3600s"), rpc
        elif rpc.name == "CompleteUpload":
            assert action["timeout"] == "600s"  # it reads the whole file back from S3
        else:
            assert action["timeout"] == "15s", rpc
        if "retry_policy" in action:
            retried.add(rpc.name)
    # Reads only: a retried write could do its work twice.
    assert retried == {rpc.name for rpc in RPCS if rpc.public and not rpc.streaming
                       and rpc.name.startswith(("Get", "List", "Resolve"))}
    assert {"SendMessage", "CreateUser", "CreateUpload", "CompleteUpload"}.isdisjoint(retried)


def test_the_admin_interface_listens_on_loopback_whatever_the_host() -> None:
    built = config(host="0.0.0.0")
    assert built["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert built["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] == "0.0.0.0"


# Through the real Envoy ------------------------------------------------------------------------

class Door:
    def __init__(self, envoy, port: int, upstream: Upstream, authorizer: Authorizer, hooks: WebhookReceiver) -> None:
        self.envoy, self.port, self.upstream, self.authorizer, self.hooks = envoy, port, upstream, authorizer, hooks
        self.url = f"http://127.0.0.1:{port}"
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def grpc(self, path: str, body: bytes = b"", metadata: list[tuple[str, str]] | None = None) -> grpc.StatusCode:
        try:
            self.channel.unary_unary(path)(body, metadata=metadata or [], timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            self.last_error = error
            return error.code()

    def access_log(self, request_id: str | None = None, wait: float = 5) -> list[dict]:
        deadline = time.monotonic() + wait
        while True:
            lines = access_log(self.envoy)
            if request_id is None or any(line["request_id"] == request_id for line in lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


@pytest.fixture(scope="module")
def door(tmp_path_factory) -> Iterator[Door]:
    port, admin, upstream_port, auth_port, hook_port, reflection_port = free_ports(6)
    upstream = Upstream(frozenset(rpc.path for rpc in RPCS if rpc.streaming))
    authorizer, hooks = Authorizer(), WebhookReceiver()
    servers = [grpc_server(upstream_port, upstream.handler()), grpc_server(auth_port, authorizer.handler())]
    reflection, _ = reflection_server(DESCRIPTOR, SERVICES, "127.0.0.1", reflection_port)
    reflection.start()
    http = hooks.serve(hook_port)
    built = config(port=port, admin_port=admin, upstream_port=upstream_port,
                   authz=Endpoint("ext_authz", "127.0.0.1", auth_port),
                   reflection=Endpoint("reflection", "127.0.0.1", reflection_port),
                   webhooks=[Webhook("/whatsapp/webhook", Endpoint("whatsapp_webhook", "127.0.0.1", hook_port, http2=False))])
    try:
        with running_envoy(built, tmp_path_factory.mktemp("envoy")) as envoy:
            yield Door(envoy, port, upstream, authorizer, hooks)
    finally:
        http.shutdown()
        for server in [*servers, reflection]:
            server.stop(0)


GOOD = {"authorization": "Bearer good"}


def test_rest_calls_are_checked_by_their_grpc_path(door: Door) -> None:
    before = len(door.authorizer.paths)
    response = requests.get(f"{door.url}/v1/users/u-1", headers=GOOD)
    assert response.status_code == 200, response.text
    assert door.authorizer.paths[before:] == [GET_USER]
    assert door.upstream.calls_to(GET_USER)[-1].metadata["x-envoy-original-path"] == "/v1/users/u-1"


def test_only_the_auth_service_names_the_caller(door: Door) -> None:
    claims = {"x-chat4all-client-id": "someone-else", "x-chat4all-scopes": "admin", "x-chat4all-tenant": "t-9"}
    for call in (lambda: requests.get(f"{door.url}/v1/users/u-2", headers={**GOOD, **claims}).status_code,
                 lambda: door.grpc(GET_USER, metadata=[*GOOD.items(), *claims.items()])):
        before = len(door.upstream.calls_to(GET_USER))
        assert call() in (200, grpc.StatusCode.OK)
        [reached] = door.upstream.calls_to(GET_USER)[before:]
        seen = {key: value for key, value in reached.metadata.items() if key.startswith("x-chat4all-")}
        # The auth service's answer, whole: nothing the client claimed, the key itself not at all.
        assert seen == {"x-chat4all-client-id": "client-a", "x-chat4all-scopes": "send,read", "x-chat4all-key-id": "key-1"}
        assert "authorization" not in reached.metadata


def test_event_streams_flow_through_rest_and_grpc(door: Door) -> None:
    stream = "/chat4all.messaging.v1.MessageService/StreamConversationEvents"
    rest = requests.get(f"{door.url}/v1/conversations/c-1/events:stream", headers=GOOD, stream=True)
    assert rest.status_code == 200 and json.loads(rest.text) == [{}, {}]
    events = list(door.channel.unary_stream(stream)(b"", metadata=list(GOOD.items()), timeout=10))
    assert events == [b"", b""]
    assert len(door.upstream.calls_to(stream)) == 2


def test_calls_without_a_good_key_are_refused_with_the_grpc_code(door: Door) -> None:
    before = len(door.upstream.calls)
    missing = requests.post(f"{door.url}/v1/conversations/c-1/messages", json={"content": {"text": "hi"}})
    assert (missing.status_code, missing.headers["content-type"]) == (401, "application/json")
    assert missing.json() == {"code": 16, "message": "missing or unknown API key", "details": []}
    busy = requests.get(f"{door.url}/v1/users/u-1", headers={"authorization": "Bearer busy"})
    assert (busy.status_code, busy.json()["code"], busy.headers["retry-after"]) == (429, 8, "3")
    assert door.grpc(GET_USER) == grpc.StatusCode.UNAUTHENTICATED
    assert door.grpc(GET_USER, metadata=[("authorization", "Bearer busy")]) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(door.upstream.calls) == before


def test_unknown_paths_and_internal_rpcs_are_not_found(door: Door) -> None:
    before = len(door.upstream.calls)
    unknown = requests.get(f"{door.url}/v1/nothing/here", headers=GOOD)
    assert (unknown.status_code, unknown.headers["content-type"]) == (404, "application/json")
    assert unknown.json()["code"] == 5
    assert requests.post(f"{door.url}{APPLY_USER_MERGE}", json={}, headers=GOOD).status_code == 404
    assert door.grpc(APPLY_USER_MERGE, metadata=list(GOOD.items())) == grpc.StatusCode.UNIMPLEMENTED
    assert door.grpc("/chat4all.connector.v1.MessageConnector/SendMessage") == grpc.StatusCode.UNIMPLEMENTED
    bad_query = requests.get(f"{door.url}/v1/conversations/c-1/messages?pageSize=2&nope=1", headers=GOOD)
    assert (bad_query.status_code, bad_query.json()["code"]) == (400, 3)
    assert len(door.upstream.calls) == before


def test_request_bodies_over_the_limit_are_refused(door: Door) -> None:
    envelope = len(json.dumps({"requestId": "r", "content": {"text": ""}}))
    def send(size: int) -> requests.Response:
        body = json.dumps({"requestId": "r", "content": {"text": "x" * (size - envelope)}})
        assert len(body) == size
        return requests.post(f"{door.url}/v1/conversations/c-1/messages", data=body, headers={
            **GOOD, "content-type": "application/json"})

    assert send(MiB).status_code == 200
    over = send(MiB + 1)
    assert (over.status_code, over.json()["code"]) == (413, 8)
    assert door.grpc(CREATE_USER, b"\n" * (MiB - 5), metadata=list(GOOD.items())) == grpc.StatusCode.OK
    assert door.grpc(CREATE_USER, b"\n" * (MiB - 4), metadata=list(GOOD.items())) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_reads_are_retried_and_writes_are_not(door: Door) -> None:
    failing = [*GOOD.items(), ("x-test-fail", "unavailable")]
    for path, attempts in ((GET_USER, 1 + Limits().read_retries), (CREATE_USER, 1)):
        before = len(door.upstream.calls_to(path))
        assert door.grpc(path, metadata=failing) == grpc.StatusCode.UNAVAILABLE
        assert len(door.upstream.calls_to(path)) - before == attempts, path
    rest = requests.get(f"{door.url}/v1/users/u-3", headers=dict(failing))
    assert (rest.status_code, rest.json()["code"]) == (503, 14)


def test_webhooks_reach_the_connector_without_a_key_and_only_by_get_or_post(door: Door) -> None:
    hook = f"{door.url}/whatsapp/webhook"
    before = len(door.hooks.requests)
    handshake = requests.get(f"{hook}?hub.mode=subscribe&hub.verify_token=v-secret&hub.challenge=42")
    event = requests.post(hook, data=b'{"object": "whatsapp_business_account"}', headers={
        "x-hub-signature-256": "sha256=00", "x-chat4all-client-id": "someone", "authorization": "Bearer good"})
    assert (handshake.status_code, event.status_code) == (200, 200)
    (_, got_path, _, _), (method, _, headers, body) = door.hooks.requests[before:]
    assert got_path == "/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=v-secret&hub.challenge=42"
    assert (method, body) == ("POST", b'{"object": "whatsapp_business_account"}')
    lowered = {key.lower(): value for key, value in headers.items()}
    assert lowered["x-hub-signature-256"] == "sha256=00"  # the connector checks it
    assert "x-chat4all-client-id" not in lowered and "authorization" not in lowered
    for refused in ("PUT", "DELETE", "PATCH"):
        answer = requests.request(refused, hook, data=b"{}")
        assert (answer.status_code, answer.json()["code"], answer.headers["allow"]) == (405, 12, "GET, POST")
    assert requests.post(hook, data=b"x" * (MiB + 1)).status_code == 413
    assert len(door.hooks.requests) == before + 2


def test_grpcurl_lists_and_describes_the_public_api_through_the_door(door: Door) -> None:
    target = f"127.0.0.1:{door.port}"
    anonymous = subprocess.run([str(binaries.grpcurl()), "-plaintext", target, "list"], capture_output=True, text=True,
                               timeout=30, check=False)
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr  # a key is needed to read the contract
    grpcurl = [str(binaries.grpcurl()), "-plaintext", "-H", "authorization: Bearer good"]
    listed = subprocess.run([*grpcurl, target, "list"], capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert set(SERVICES) <= set(listed)
    assert "chat4all.connector.v1.MessageConnector" not in listed
    described = subprocess.run([*grpcurl, target, "describe", "chat4all.conversations.v1.ConversationService"],
                               capture_output=True, text=True, timeout=30, check=True).stdout
    assert "rpc GetConversation" in described and "ApplyUserMerge" not in described
    called = subprocess.run([*grpcurl, "-d", '{"user_id": "u-9"}', target,
                             GET_USER.lstrip("/")], capture_output=True, text=True, timeout=30, check=False)
    assert called.returncode == 0, called.stderr
    assert door.upstream.calls_to(GET_USER)[-1].metadata["x-chat4all-client-id"] == "client-a"


def test_the_access_log_is_json_and_keeps_no_secrets(door: Door) -> None:
    call = requests.get(f"{door.url}/v1/users/u-4", headers=GOOD).headers["x-request-id"]
    hook = requests.get(f"{door.url}/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=v-secret&hub.challenge=1")
    door.access_log(call)
    by_id = {line["request_id"]: line for line in door.access_log(hook.headers["x-request-id"])}
    assert (by_id[call]["method"], by_id[call]["path"], by_id[call]["route"], by_id[call]["status"]) == (
        "GET", "/v1/users/u-4", GET_USER, 200)
    assert (by_id[call]["grpc_status"], by_id[call]["client_id"], by_id[call]["upstream_cluster"]) == (0, "client-a", "api")
    assert by_id[hook.headers["x-request-id"]]["path"] == "/whatsapp/webhook"  # no query: it carries the verify token
    text = door.envoy.log_text()
    assert "Bearer good" not in text and "v-secret" not in text


def test_without_an_answer_from_the_auth_service_calls_are_refused(tmp_path: Path) -> None:
    port, admin, upstream_port = free_ports(3)
    upstream = Upstream()
    server = grpc_server(upstream_port, upstream.handler())
    dead = Endpoint("ext_authz", "127.0.0.1", free_port())  # nothing listens there
    try:
        with running_envoy(config(port=port, admin_port=admin, upstream_port=upstream_port, authz=dead), tmp_path):
            refused = requests.get(f"http://127.0.0.1:{port}/v1/users/u-1", headers=GOOD)
            assert (refused.status_code, refused.json()["code"]) == (503, 14)
            assert not upstream.calls
    finally:
        server.stop(0)


def test_without_the_auth_service_client_claims_still_never_reach_a_service(tmp_path: Path) -> None:
    port, admin, upstream_port = free_ports(3)
    upstream = Upstream()
    server = grpc_server(upstream_port, upstream.handler())
    try:
        with running_envoy(config(port=port, admin_port=admin, upstream_port=upstream_port), tmp_path):
            claims = {"x-chat4all-client-id": "someone-else", "x-chat4all-scopes": "admin"}
            assert requests.get(f"http://127.0.0.1:{port}/v1/users/u-1", headers=claims).status_code == 200
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                channel.unary_unary(GET_USER)(b"", metadata=list(claims.items()), timeout=10)
            assert len(upstream.calls) == 2
            for call in upstream.calls:
                assert not [key for key in call.metadata if key.startswith("x-chat4all-")], call.metadata
    finally:
        server.stop(0)
