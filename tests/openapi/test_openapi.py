"""The committed OpenAPI document: fresh, valid OpenAPI 3, one operation per public RPC, and
faithful to the proto3 JSON mapping Envoy's transcoder applies (requests generated from the
document parse into the RPC's request message; responses printed the way Envoy prints them
validate against it). No Envoy is needed: the JSON mapping is protobuf's own."""

from __future__ import annotations

import importlib
import json
import random
from functools import cache
from pathlib import Path

import pytest
import schemathesis
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, json_format, message_factory
from google.protobuf import descriptor_pool as pools
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30ReadValidator
from openapi_spec_validator import validate

from scripts import openapi

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi" / "chat4all.openapi.json"
DESCRIPTOR_SET = ROOT / "gen" / "descriptors" / "chat4all.binpb"


@cache
def document() -> dict:
    return json.loads(DOCUMENT.read_text())


@cache
def operations() -> dict[str, tuple[str, str, dict]]:
    """operationId -> (verb, path, operation)."""
    found = {}
    for path, verbs in document()["paths"].items():
        for verb, operation in verbs.items():
            found[operation["operationId"]] = (verb, path, operation)
    return found


@cache
def pool() -> pools.DescriptorPool:
    """The default pool, with every chat4all module imported (so the options are readable)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    for file in files:
        if file.name.startswith("chat4all/"):
            importlib.import_module(file.name.removesuffix(".proto").replace("/", ".") + "_pb2")
    return pools.Default()


def message_class(full_name: str):
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(full_name))


def public_rpcs() -> dict[str, tuple[str, str]]:
    """'<package>.<Service>/<Method>' -> (verb, template), read through the generated modules'
    own extensions rather than the generator's."""
    from chat4all.auth.v1 import options_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    rpcs = {}
    for file in files:
        for service in file.service:
            descriptor = pool().FindServiceByName(f"{file.package}.{service.name}")
            for method in descriptor.methods:
                options = method.GetOptions()
                if options.HasExtension(options_pb2.required_scope) and options.HasExtension(annotations_pb2.http):
                    rule = options.Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    rpcs[f"{descriptor.full_name}/{method.name}"] = (verb, getattr(rule, verb))
    return rpcs


def resolve(ref: str) -> dict:
    return document()["components"]["schemas"][ref.removeprefix("#/components/schemas/")]


def test_committed_document_equals_a_fresh_generation() -> None:
    fresh = openapi.render(openapi.build(DESCRIPTOR_SET.read_bytes(), openapi.local_server_url()))
    assert DOCUMENT.read_text() == fresh, "openapi/ is stale: run scripts/gen"


def test_document_is_valid_openapi_3() -> None:
    assert document()["openapi"] == "3.0.3"
    validate(document())


def test_every_public_rpc_is_exactly_one_operation() -> None:
    rpcs = public_rpcs()
    assert len(rpcs) >= 30
    by_method: dict[str, list[tuple[str, str]]] = {}
    for verb, path, operation in operations().values():
        by_method.setdefault(operation["x-chat4all-grpc-method"], []).append((verb, path))
    assert set(by_method) == set(rpcs)
    for method, bindings in by_method.items():
        assert bindings == [rpcs[method]], method


def test_every_operation_names_its_scope_and_needs_a_key() -> None:
    assert document()["security"] == [{"ApiKey": []}, {"ApiKeyHeader": []}]  # either
    schemes = document()["components"]["securitySchemes"]
    assert (schemes["ApiKey"]["type"], schemes["ApiKey"]["scheme"]) == ("http", "bearer")
    assert (schemes["ApiKeyHeader"]["in"], schemes["ApiKeyHeader"]["name"]) == ("header", "x-api-key")
    for _, _, operation in operations().values():
        scope = operation["x-chat4all-required-scope"]
        assert scope in {"SCOPE_SEND", "SCOPE_READ", "SCOPE_ADMIN"}
        assert f"Required scope: `{scope}`." in operation["description"]


def test_send_message() -> None:
    verb, path, operation = operations()["MessageService_SendMessage"]
    assert (verb, path) == ("post", "/v1/conversations/{conversation_id}/messages")
    assert operation["x-chat4all-required-scope"] == "SCOPE_SEND"
    assert operation["summary"] == "Posts a message in a conversation and returns its server-assigned message_id."
    [parameter] = operation["parameters"]
    assert parameter["name"] == "conversation_id" and parameter["in"] == "path" and parameter["required"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    # The path binds conversation_id, so the body has the other fields, by JSON name.
    assert list(body["properties"]) == ["requestId", "senderUserId", "content"]
    assert body["required"] == ["requestId", "senderUserId", "content"]
    assert body["properties"]["content"]["allOf"] == [
        {"$ref": "#/components/schemas/chat4all.messaging.v1.MessageContent"}]
    content = resolve("#/components/schemas/chat4all.messaging.v1.MessageContent")
    assert {"text", "template", "attachments"} <= set(content["properties"])
    assert content["not"] == {"required": ["text", "template"]}  # oneof body
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/chat4all.messaging.v1.SendMessageResponse"}
    # Its documented errors, under the statuses Envoy maps their codes to.
    responses = operation["responses"]
    assert "`NOT_FOUND`" in responses["404"]["description"]
    assert "`FAILED_PRECONDITION`" in responses["400"]["description"]
    assert "`ALREADY_EXISTS`" in responses["409"]["description"]
    assert "`PERMISSION_DENIED`: the sender is not a member" in responses["403"]["description"]
    assert "the key lacks the scope" in responses["403"]["description"]
    assert responses["401"] == {"$ref": "#/components/responses/Unauthenticated"}
    assert responses["429"] == {"$ref": "#/components/responses/RateLimited"}
    assert "412" not in responses  # Envoy answers FAILED_PRECONDITION with 400


def test_get_file() -> None:
    verb, path, operation = operations()["FileService_GetFile"]
    assert (verb, path) == ("get", "/v1/files/{file_id}")
    assert operation["x-chat4all-required-scope"] == "SCOPE_READ"
    assert [p["name"] for p in operation["parameters"]] == ["file_id"]
    assert "requestBody" not in operation
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/chat4all.files.v1.GetFileResponse"}
    file = resolve("chat4all.files.v1.File")
    assert file["properties"]["sizeBytes"]["type"] == "string"  # int64
    assert file["properties"]["createTime"] == {
        "type": "string", "format": "date-time", "description": "When the upload was created.", "readOnly": True}
    assert file["properties"]["state"]["allOf"] == [{"$ref": "#/components/schemas/chat4all.files.v1.FileState"}]
    assert resolve("chat4all.files.v1.FileState")["enum"][:2] == ["FILE_STATE_UNSPECIFIED", "FILE_STATE_UPLOADING"]
    for error in ("400", "401", "403", "404", "429", "503", "default"):
        assert error in operation["responses"]
    assert resolve("google.rpc.Status")["required"] == ["code", "message"]


def test_query_parameters_are_json_names_with_nested_fields_flattened() -> None:
    _, _, operation = operations()["ConversationService_ListConversations"]
    names = [p["name"] for p in operation["parameters"]]
    assert names == ["pageSize", "pageToken", "memberUserId", "platformBinding.channel",
                     "platformBinding.accountId", "platformBinding.externalGroupId"]
    _, _, operation = operations()["ConversationService_RemoveMember"]
    required = {p["name"]: p.get("required", False) for p in operation["parameters"]}
    assert required["conversation_id"] and required["user_id"] and required["requestId"]


def test_server_streaming_rpcs_answer_an_array() -> None:
    streaming = {op_id for op_id, (_, _, op) in operations().items() if op.get("x-chat4all-streaming")}
    assert streaming == {"MessageService_StreamConversationEvents", "MessageService_StreamUserEvents"}
    _, _, operation = operations()["MessageService_StreamConversationEvents"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"type": "array", "items": {
        "$ref": "#/components/schemas/chat4all.messaging.v1.StreamConversationEventsResponse"}}


def test_64_bit_integer_patterns_cover_the_range_exactly() -> None:
    import re

    int64 = re.compile(openapi.INT64["pattern"])
    for good in ("0", "-1", "12345678901", str(2**63 - 1), str(-(2**63 - 1))):
        assert int64.match(good), good
    for bad in ("", "01", "1.5", "1e3", str(2**63), "99999999999999999999"):
        assert not int64.match(bad), bad


# --- faithfulness to the JSON mapping ------------------------------------------------------------


def populated(cls, rng: random.Random, depth: int = 0):
    """A message with every field set (one member per oneof), values at their edges."""
    message = cls()
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Timestamp":
        message.seconds, message.nanos = rng.randrange(0, 253402300799), rng.choice([0, 5 * 10**8, 123456789])
        return message
    if descriptor.full_name == "google.protobuf.Duration":
        message.seconds, message.nanos = rng.randrange(0, 10**6), rng.choice([0, 1500, 999999999])
        return message
    chosen = {oneof.name: rng.choice(oneof.fields).name for oneof in descriptor.oneofs}
    for field in descriptor.fields:
        if field.containing_oneof is not None and chosen[field.containing_oneof.name] != field.name:
            continue
        for _ in range(rng.choice([0, 1, 2]) if field.is_repeated else 1):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth > 6:
                    break
                value = populated(message_class(field.message_type.full_name), rng, depth + 1)
                if field.is_repeated:
                    getattr(message, field.name).append(value)
                else:
                    getattr(message, field.name).CopyFrom(value)
                continue
            if field.type == FieldDescriptor.TYPE_ENUM:
                value = rng.choice(field.enum_type.values).number
            elif field.type == FieldDescriptor.TYPE_STRING:
                value = rng.choice(["", "abc", "olá ✓"])
            elif field.type == FieldDescriptor.TYPE_BOOL:
                value = rng.choice([True, False])
            elif field.type == FieldDescriptor.TYPE_INT64:
                value = rng.choice([0, -1, 2**63 - 1, 2147483648])
            elif field.type == FieldDescriptor.TYPE_INT32:
                value = rng.choice([0, -5, 2**31 - 1])
            else:
                raise AssertionError(f"add a value for {field.full_name}")
            if field.is_repeated:
                getattr(message, field.name).append(value)
            else:
                setattr(message, field.name, value)
    return message


def response_types() -> list[tuple[str, str]]:
    found = []
    for op_id, (_, _, operation) in sorted(operations().items()):
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        ref = schema.get("items", schema)["$ref"]
        found.append((op_id, ref.removeprefix("#/components/schemas/")))
    return found


@pytest.mark.parametrize(("operation_id", "message"), response_types())
def test_responses_printed_as_envoy_prints_them_validate(operation_id: str, message: str) -> None:
    # Envoy's print options: lowerCamelCase names, every primitive field printed, enums by name.
    validator = OAS30ReadValidator({"$ref": f"#/components/schemas/{message}", **document()})
    rng = random.Random(operation_id)
    for _ in range(25):
        printed = json_format.MessageToDict(populated(message_class(message), rng),
                                            always_print_fields_with_no_presence=True)
        validator.validate(printed)
    validator.validate(json_format.MessageToDict(message_class(message)(), always_print_fields_with_no_presence=True))


def test_an_error_as_envoy_prints_it_validates() -> None:
    validator = OAS30ReadValidator({"$ref": "#/components/schemas/google.rpc.Status", **document()})
    validator.validate({"code": 5, "message": "no file with this id", "details": []})
    validator.validate({"code": 8, "message": "slow down", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"}]})


@cache
def schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_path(DOCUMENT)


def schemathesis_operations() -> dict[str, object]:
    return {result.ok().definition.raw["operationId"]: result.ok() for result in schema().get_all_operations()}


def test_schemathesis_loads_every_operation() -> None:
    assert set(schemathesis_operations()) == set(operations())


def request_dict(case, operation: dict) -> dict:
    """What Envoy builds the request message from: path variables, query parameters (dotted JSON
    names), and the body, merged into one JSON object."""
    merged: dict = dict(case.body) if isinstance(case.body, dict) else {}
    for name, value in (case.query or {}).items():
        *parents, last = name.split(".")
        target = merged
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = value
    for name, value in (case.path_parameters or {}).items():
        merged[name] = value  # the path wins, as in Envoy
    return merged


@pytest.mark.parametrize("operation_id", sorted(operations()))
def test_requests_generated_from_the_document_parse_into_the_request_message(operation_id: str) -> None:
    operation = schemathesis_operations()[operation_id]
    grpc_method = operations()[operation_id][2]["x-chat4all-grpc-method"]
    service, method = grpc_method.split("/")
    request = message_class(pool().FindServiceByName(service).FindMethodByName(method).input_type.full_name)

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def check(data) -> None:
        case = data.draw(operation.as_strategy())
        # Strict: an unknown name (a field the document invented) fails here.
        json_format.ParseDict(request_dict(case, operations()[operation_id][2]), request())

    check()
