"""The OpenAPI 3.0.3 document of Chat4All's REST API, generated from the FileDescriptorSet.

    python -m scripts.openapi DESCRIPTOR_SET OUTPUT_JSON     (scripts/gen runs it; never edit the output)

The REST API is Envoy's grpc_json_transcoder in front of the gRPC services (mesh/envoy_config.py),
so the document describes what that filter does with our protos (each rule below was checked
against the Envoy we run; tests/openapi checks the JSON mapping on every run):

- an RPC is public when it has both a google.api.http rule and a (chat4all.auth.v1.required_scope)
  option; it becomes one operation (one per binding), and RPCs without either stay off the document;
- JSON is the proto3 JSON mapping with Envoy's print options: lowerCamelCase names, every
  primitive field printed (unset messages and oneof members are left out), enums by name,
  64-bit integers as strings, Timestamp as RFC 3339, Duration as "1.5s";
- path variables keep the field path written in the template ({conversation_id}); with
  `body: "*"` the body is the request message less the path fields (a path value wins over the
  body's); without a body, every other field is a query parameter, named by its JSON name (the
  proto name is accepted too), nested messages flattened as `parent.child`, repeated messages
  and maps left out (a query string cannot carry them);
- a server-streaming RPC answers one JSON array that Envoy writes as the messages arrive;
- errors are the google.rpc.Status the service returned, as JSON, under the HTTP status Envoy maps
  its code to (FAILED_PRECONDITION is 400, not 412), or Envoy's own refusal;
- proto comments become the descriptions; REQUIRED fields are `required`, OUTPUT_ONLY ones
  `readOnly`.

The options are read through a descriptor pool built from the set itself, so the output depends
on the protos alone (not on generated modules), plus the front door's local address from
scripts/platform/local.toml for `servers`; the JSON is written byte-stable.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_CONFIG = ROOT / "scripts" / "platform" / "local.toml"

Field = descriptor_pb2.FieldDescriptorProto

# Envoy's Grpc::Utility::grpcToHttpStatus: the HTTP status a gRPC code comes back as.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499,
    "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500, "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}

# What every public RPC can answer besides the errors it documents: the front door's own refusals
# (always listed), and the errors each service states for all its RPCs (unless the RPC says more).
FRONT_DOOR_ERRORS = {
    "UNAUTHENTICATED": "no API key, or one that is malformed, unknown or revoked.",
    "PERMISSION_DENIED": "the key lacks the scope this operation requires.",
    "RESOURCE_EXHAUSTED": "the client's requests per second are used up; retry later.",
}
SERVICE_ERRORS = {
    "INVALID_ARGUMENT": "a REQUIRED field is missing or a field is malformed.",
    "UNAVAILABLE": "a backing store or the broker cannot be reached; safe to retry with the same "
                   "request_id.",
}
# components/responses names for an HTTP status when an RPC documents nothing more for it.
COMMON_RESPONSES = {400: "InvalidArgument", 401: "Unauthenticated", 403: "PermissionDenied",
                    429: "RateLimited", 503: "Unavailable"}

ENVOY_REFUSALS = {
    400: "Envoy answers 400 itself when the request cannot be turned into the RPC's message "
         "(malformed JSON, a value of the wrong type or out of range, an unknown enum name or "
         "query parameter).",
    503: "Envoy answers 503 itself when the service cannot be reached.",
}
PAYLOAD_TOO_LARGE = ("The request body is over the front door's limit (`max_request_bytes` in "
                     "scripts/platform/local.toml); file bytes go to their presigned URLs instead.")

STATUS_SCHEMA = "google.rpc.Status"



def _decimal_up_to(limit: int) -> str:
    """A regex for the decimal integers 0..limit without leading zeros: a string-encoded 64-bit
    integer past its range is refused by Envoy, so the pattern states the range exactly."""
    digits = str(limit)
    alternatives = ["0"] + ([f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else [])
    for index, digit in enumerate(digits):
        low = 1 if index == 0 else 0
        if int(digit) > low:
            rest = len(digits) - index - 1
            alternatives.append(f"{digits[:index]}[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "(" + "|".join(alternatives) + ")"


INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
UINT32 = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
INT64 = {"type": "string", "format": "int64", "pattern": f"^-?{_decimal_up_to(2**63 - 1)}$"}
UINT64 = {"type": "string", "format": "uint64", "pattern": f"^{_decimal_up_to(2**64 - 1)}$"}
SCALARS: dict[int, dict[str, object]] = {
    Field.TYPE_DOUBLE: {"type": "number", "format": "double"},
    Field.TYPE_FLOAT: {"type": "number", "format": "float"},
    Field.TYPE_INT64: INT64, Field.TYPE_SINT64: INT64, Field.TYPE_SFIXED64: INT64,
    Field.TYPE_UINT64: UINT64, Field.TYPE_FIXED64: UINT64,
    Field.TYPE_INT32: INT32, Field.TYPE_SINT32: INT32, Field.TYPE_SFIXED32: INT32,
    Field.TYPE_UINT32: UINT32, Field.TYPE_FIXED32: UINT32,
    Field.TYPE_BOOL: {"type": "boolean"},
    Field.TYPE_STRING: {"type": "string"},
    Field.TYPE_BYTES: {"type": "string", "format": "byte"},
}

# Well-known types have their own JSON forms; they are written inline, never as components.
WELL_KNOWN: dict[str, dict[str, object]] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Any": {"type": "object", "required": ["@type"],
                             "properties": {"@type": {"type": "string"}}},
    ".google.protobuf.StringValue": {"type": "string", "nullable": True},
    ".google.protobuf.BytesValue": {"type": "string", "format": "byte", "nullable": True},
    ".google.protobuf.BoolValue": {"type": "boolean", "nullable": True},
    ".google.protobuf.DoubleValue": {"type": "number", "format": "double", "nullable": True},
    ".google.protobuf.FloatValue": {"type": "number", "format": "float", "nullable": True},
    ".google.protobuf.Int32Value": {**INT32, "nullable": True},
    ".google.protobuf.UInt32Value": {**UINT32, "nullable": True},
    ".google.protobuf.Int64Value": {**INT64, "nullable": True},
    ".google.protobuf.UInt64Value": {**UINT64, "nullable": True},
}

INTRO = """\
Chat4All's REST API: Envoy's gRPC-JSON transcoder in front of the gRPC services, so every \
operation is one RPC of `proto/chat4all/*/v1/service.proto` (named in \
`x-chat4all-grpc-method`) and behaves exactly like it. Generated from the protos by \
`scripts/gen`; do not edit by hand.

- **JSON** is the proto3 JSON mapping: lowerCamelCase field names (the proto names are accepted \
in requests too), enums by name, 64-bit integers as strings, timestamps as RFC 3339 strings, \
durations as strings like `"1.5s"`. Responses print every scalar, enum and repeated field, \
defaults included; a message field or oneof member that is not set is left out. Fields the \
schemas do not list are outside the contract (Envoy ignores them in a body).
- **Path and query**: path variables are the request's fields; with a body, a path value wins \
over the same field in the body. Without a body the other fields are query parameters, nested \
ones as `parent.child`; a query parameter that names no field is refused (400).
- **Errors** are the RPC's `google.rpc.Status` as JSON (`code` is the gRPC code, `details` its \
typed details, such as `google.rpc.RetryInfo`), under the HTTP status Envoy maps the code to: \
INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE 400, UNAUTHENTICATED 401, \
PERMISSION_DENIED 403, NOT_FOUND 404, ALREADY_EXISTS and ABORTED 409, RESOURCE_EXHAUSTED 429, \
UNAVAILABLE 503, DEADLINE_EXCEEDED 504. When Envoy itself refuses a request (a body it cannot \
parse or that is too large, a path that maps to no RPC, no upstream) it answers with the same \
`code` and `message`, or with plain text where its local replies are not mapped to JSON.
- **Authentication**: every operation needs an API key (`Authorization: Bearer <secret>`, or \
`x-api-key: <secret>`) holding the scope named in its description and in \
`x-chat4all-required-scope`.
- **Idempotency**: mutating requests carry `requestId` (a UUIDv4, AIP-155); a retry with the same \
one returns the first answer and changes nothing twice.
"""

STREAMING_NOTE = """\
Over REST the stream is one JSON array that Envoy writes as the messages arrive (`[`, then each \
message, comma-separated) and that stays open until the client disconnects. An error before the \
first message is an ordinary error response; one after it ends the stream without a closing \
`]`."""


def _comment(text: str) -> str:
    """A proto comment as Markdown: one leading space per line and trailing blanks dropped."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.rstrip().split("\n")]
    lines = [line.rstrip() for line in lines if not line.strip().startswith("buf:lint:")]
    return "\n".join(lines).strip("\n")


def _split_errors(comment: str) -> tuple[str, list[tuple[str, str]]]:
    """The comment without its `Errors:` block, and that block as (gRPC code, explanation) pairs."""
    kept: list[str] = []
    errors: list[tuple[str, str]] = []
    in_block = False
    for line in comment.split("\n"):
        if line.strip() == "Errors:":
            in_block = True
            continue
        if in_block:
            entry = re.match(r"^ {1,3}([A-Z_]+): (.*)$", line)
            if entry:
                if entry.group(1) not in HTTP_STATUS:
                    raise ValueError(f"unknown gRPC code {entry.group(1)!r} in an Errors: block")
                errors.append((entry.group(1), entry.group(2).strip()))
                continue
            if line.startswith("    ") and errors:
                code, text = errors[-1]
                errors[-1] = (code, f"{text} {line.strip()}")
                continue
            in_block = False
        kept.append(line)
    return "\n".join(kept).strip("\n"), errors


def _summary(comment: str) -> str:
    """The first sentence of the first paragraph."""
    paragraph = " ".join(comment.split("\n\n")[0].split())
    sentence = re.match(r"^(.*?\.)(\s|$)", paragraph)
    return sentence.group(1) if sentence else paragraph


def _described(schema: dict[str, object], description: str, read_only: bool = False) -> dict[str, object]:
    """`schema` with a description; a $ref is wrapped in allOf, since OpenAPI 3.0 ignores its siblings."""
    extra: dict[str, object] = {}
    if description:
        extra["description"] = description
    if read_only:
        extra["readOnly"] = True
    if not extra:
        return schema
    if "$ref" in schema:
        return {"allOf": [schema], **extra}
    return {**schema, **extra}


def _error_response(status: int, lines: list[str], documented: set[str]) -> dict[str, object]:
    """An error response whose body is a google.rpc.Status, or plain text from Envoy itself."""
    lines = list(lines)
    for code, text in FRONT_DOOR_ERRORS.items():
        if HTTP_STATUS[code] == status:
            lines.append(f"- `{code}`: {text}")
    for code, text in SERVICE_ERRORS.items():
        if HTTP_STATUS[code] == status and code not in documented:
            lines.append(f"- `{code}`: {text}")
    if status in ENVOY_REFUSALS:
        lines += ["", ENVOY_REFUSALS[status]]
    response: dict[str, object] = {"description": "\n".join(lines)}
    if status == HTTP_STATUS["RESOURCE_EXHAUSTED"]:
        response["headers"] = {"Retry-After": {
            "description": "Seconds to wait before retrying (also in the status's RetryInfo detail).",
            "schema": {"type": "integer", "minimum": 0}}}
    response["content"] = {
        "application/json": {"schema": _ref(STATUS_SCHEMA)},
        "text/plain": {"schema": {"type": "string"}},
    }
    return response


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass
class _Declared:
    """A message or enum, and where its comments are: its file and source-info path."""

    proto: Any
    file: str
    path: tuple[int, ...]


@dataclass
class _Protos:
    """The descriptor set, indexed by full name, with its comments and custom options."""

    files: list[descriptor_pb2.FileDescriptorProto]
    messages: dict[str, _Declared] = field(default_factory=dict)
    enums: dict[str, _Declared] = field(default_factory=dict)
    comments: dict[tuple[str, tuple[int, ...]], str] = field(default_factory=dict)
    pool: descriptor_pool.DescriptorPool = field(default_factory=descriptor_pool.DescriptorPool)

    @classmethod
    def load(cls, data: bytes) -> _Protos:
        files = list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
        protos = cls(files)
        for file in files:
            for location in file.source_code_info.location:
                if location.leading_comments:
                    protos.comments[(file.name, tuple(location.path))] = _comment(location.leading_comments)
            for index, message in enumerate(file.message_type):
                protos._index_message(file, f".{file.package}", message, (4, index))
            for index, enum in enumerate(file.enum_type):
                protos.enums[f".{file.package}.{enum.name}"] = _Declared(enum, file.name, (5, index))
        # Options are read through a pool built from the set, where the extensions are known.
        for file in files:
            protos.pool.AddSerializedFile(file.SerializeToString())
        return protos

    def _index_message(self, file: descriptor_pb2.FileDescriptorProto, scope: str,
                       message: descriptor_pb2.DescriptorProto, path: tuple[int, ...]) -> None:
        name = f"{scope}.{message.name}"
        self.messages[name] = _Declared(message, file.name, path)
        for index, nested in enumerate(message.nested_type):
            self._index_message(file, name, nested, (*path, 3, index))
        for index, enum in enumerate(message.enum_type):
            self.enums[f"{name}.{enum.name}"] = _Declared(enum, file.name, (*path, 4, index))

    def comment(self, file: str, path: tuple[int, ...]) -> str:
        return self.comments.get((file, path), "")

    def _options(self, options_type: str, options: object) -> object:
        cls = message_factory.GetMessageClass(self.pool.FindMessageTypeByName(options_type))
        return cls.FromString(options.SerializeToString())  # type: ignore[attr-defined]

    def _extension(self, options_type: str, options: object, name: str) -> object | None:
        try:
            extension = self.pool.FindExtensionByName(name)
        except KeyError:
            return None
        parsed = self._options(options_type, options)
        if extension.is_repeated:
            return list(parsed.Extensions[extension])  # type: ignore[attr-defined]
        if not parsed.HasExtension(extension):  # type: ignore[attr-defined]
            return None
        return parsed.Extensions[extension]  # type: ignore[attr-defined]

    def http_rules(self, method: descriptor_pb2.MethodDescriptorProto) -> list[object]:
        rule = self._extension("google.protobuf.MethodOptions", method.options, "google.api.http")
        if rule is None:
            return []
        return [rule, *rule.additional_bindings]  # type: ignore[attr-defined]

    def required_scope(self, method: descriptor_pb2.MethodDescriptorProto) -> str | None:
        name = "chat4all.auth.v1.required_scope"
        value = self._extension("google.protobuf.MethodOptions", method.options, name)
        if value is None:
            return None
        return self.pool.FindExtensionByName(name).enum_type.values_by_number[value].name

    def field_behaviors(self, proto: descriptor_pb2.FieldDescriptorProto) -> set[str]:
        name = "google.api.field_behavior"
        values = self._extension("google.protobuf.FieldOptions", proto.options, name) or []
        enum = self.pool.FindExtensionByName(name).enum_type
        return {enum.values_by_number[value].name for value in values}  # type: ignore[union-attr]


def _json_name(proto: descriptor_pb2.FieldDescriptorProto) -> str:
    if proto.json_name:
        return proto.json_name
    head, *rest = proto.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass
class _Operation:
    path: str
    verb: str
    spec: dict[str, object]


class _Document:
    def __init__(self, protos: _Protos) -> None:
        self.protos = protos
        self.schemas: dict[str, dict[str, object]] = {}
        self._pending: list[str] = []

    # --- schemas ---------------------------------------------------------------------------

    def component(self, type_name: str) -> dict[str, str]:
        """A $ref to the component for a message or enum, built later by `build_components`."""
        name = type_name.lstrip(".")
        if name not in self.schemas and name not in self._pending:
            self._pending.append(name)
        return _ref(name)

    def build_components(self) -> None:
        while self._pending:
            name = self._pending.pop(0)
            type_name = f".{name}"
            if type_name in self.protos.enums:
                self.schemas[name] = self.enum_schema(type_name)
            else:
                self.schemas[name] = self.message_schema(type_name)

    def enum_schema(self, type_name: str) -> dict[str, object]:
        enum = self.protos.enums[type_name]
        lines, values = [], []
        for index, value in enumerate(enum.proto.value):
            values.append(value.name)
            text = " ".join(self.protos.comment(enum.file, (*enum.path, 2, index)).split())
            lines.append(f"- `{value.name}`: {text}" if text else f"- `{value.name}`")
        description = "\n\n".join(part for part in (self.protos.comment(enum.file, enum.path),
                                                       "\n".join(lines)) if part)
        return {"type": "string", "description": description, "enum": values}

    def message_schema(self, type_name: str, skip: frozenset[str] = frozenset()) -> dict[str, object]:
        """A message as a JSON object; `skip` names fields bound elsewhere (path variables)."""
        message = self.protos.messages[type_name]
        properties: dict[str, object] = {}
        required: list[str] = []
        for index, proto in enumerate(message.proto.field):
            if proto.name in skip:
                continue
            behaviors = self.protos.field_behaviors(proto)
            description = self.protos.comment(message.file, (*message.path, 2, index))
            if "IMMUTABLE" in behaviors:
                description = f"{description}\n\nImmutable: set when created, never changed.".strip()
            properties[_json_name(proto)] = _described(
                self.field_schema(proto), description, read_only="OUTPUT_ONLY" in behaviors)
            if "REQUIRED" in behaviors:
                required.append(_json_name(proto))
        schema: dict[str, object] = {"type": "object"}
        description = self.protos.comment(message.file, message.path)
        exclusive: list[list[str]] = []
        for index, oneof in enumerate(message.proto.oneof_decl):
            members = [_json_name(proto) for proto in message.proto.field
                       if proto.HasField("oneof_index") and proto.oneof_index == index
                       and not proto.proto3_optional and proto.name not in skip]
            if len(members) < 2:
                continue
            listed = ", ".join(f"`{member}`" for member in members)
            description = f"{description}\n\nAt most one of {listed} (oneof `{oneof.name}`).".strip()
            exclusive += [[a, b] for i, a in enumerate(members) for b in members[i + 1:]]
        if description:
            schema["description"] = description
        schema["properties"] = properties
        # Envoy prints known fields only and ignores unknown ones in requests (one with an empty
        # name is even refused): anything else is outside the contract.
        schema["additionalProperties"] = False
        if required:
            schema["required"] = required
        if exclusive:  # setting two members of a oneof is a parse error
            schema["not"] = ({"required": exclusive[0]} if len(exclusive) == 1
                             else {"anyOf": [{"required": pair} for pair in exclusive]})
        return schema

    def _map_entry(self, proto: descriptor_pb2.FieldDescriptorProto) -> _Declared | None:
        if proto.type != Field.TYPE_MESSAGE or proto.label != Field.LABEL_REPEATED:
            return None
        entry = self.protos.messages.get(proto.type_name)
        return entry if entry and entry.proto.options.map_entry else None

    def single_schema(self, proto: descriptor_pb2.FieldDescriptorProto) -> dict[str, object]:
        """The schema of one value of the field (an element, if it is repeated)."""
        if proto.type in SCALARS:
            return dict(SCALARS[proto.type])
        if proto.type == Field.TYPE_ENUM:
            return self.component(proto.type_name)
        if proto.type == Field.TYPE_MESSAGE:
            if proto.type_name in WELL_KNOWN:
                return dict(WELL_KNOWN[proto.type_name])
            if proto.type_name.startswith(".google.protobuf."):
                raise ValueError(f"{proto.type_name} has no JSON mapping here yet: add it to WELL_KNOWN")
            return self.component(proto.type_name)
        raise ValueError(f"field {proto.name}: unsupported type {proto.type}")

    def field_schema(self, proto: descriptor_pb2.FieldDescriptorProto) -> dict[str, object]:
        entry = self._map_entry(proto)
        if entry is not None:
            value = next(f for f in entry.proto.field if f.name == "value")
            return {"type": "object", "additionalProperties": self.single_schema(value)}
        if proto.label == Field.LABEL_REPEATED:
            return {"type": "array", "items": self.single_schema(proto)}
        return self.single_schema(proto)

    # --- operations ------------------------------------------------------------------------

    def resolve(self, type_name: str, field_path: str) -> tuple[descriptor_pb2.FieldDescriptorProto, str]:
        """The field a dotted path names, and its comment."""
        message = self.protos.messages[type_name]
        *parents, last = field_path.split(".")
        for part in parents:
            parent = next(f for f in message.proto.field if f.name == part)
            message = self.protos.messages[parent.type_name]
        index, proto = next((i, f) for i, f in enumerate(message.proto.field) if f.name == last)
        return proto, self.protos.comment(message.file, (*message.path, 2, index))

    def query_parameters(self, type_name: str, bound: set[str], prefix: tuple[str, str] = ("", ""),
                         required_chain: bool = True, seen: tuple[str, ...] = ()) -> list[dict[str, object]]:
        """Every field not bound in the path, flattened the way Envoy reads query strings."""
        message = self.protos.messages[type_name]
        parameters: list[dict[str, object]] = []
        proto_prefix, json_prefix = prefix
        for index, proto in enumerate(message.proto.field):
            proto_path, json_path = f"{proto_prefix}{proto.name}", f"{json_prefix}{_json_name(proto)}"
            if proto_path in bound or self._map_entry(proto) is not None:
                continue
            behaviors = self.protos.field_behaviors(proto)
            required = required_chain and "REQUIRED" in behaviors
            nested = proto.type == Field.TYPE_MESSAGE and proto.type_name not in WELL_KNOWN
            if nested:
                if proto.label == Field.LABEL_REPEATED or proto.type_name in seen:
                    continue  # a query string cannot carry repeated messages; recursion has no end
                parameters += self.query_parameters(
                    proto.type_name, bound, (f"{proto_path}.", f"{json_path}."), required,
                    (*seen, type_name))
                continue
            if "OUTPUT_ONLY" in behaviors:
                continue
            parameter: dict[str, object] = {"name": json_path, "in": "query"}
            description = self.protos.comment(message.file, (*message.path, 2, index))
            if description:
                parameter["description"] = description
            if required:
                parameter["required"] = True
            parameter["schema"] = self.field_schema(proto)
            if proto.label == Field.LABEL_REPEATED:
                parameter.update(style="form", explode=True)
            parameters.append(parameter)
        return parameters

    def path_template(self, template: str, type_name: str) -> tuple[str, list[dict[str, object]], set[str]]:
        parameters: list[dict[str, object]] = []
        bound: set[str] = set()

        def variable(match: re.Match[str]) -> str:
            field_path, pattern = match.group(1), match.group(2)
            if pattern not in (None, "*"):
                raise ValueError(f"{template}: multi-segment variables cannot be written in OpenAPI")
            proto, description = self.resolve(type_name, field_path)
            schema = self.single_schema(proto)
            if schema.get("type") == "string" and "format" not in schema and "pattern" not in schema:
                schema["minLength"] = 1  # an empty segment matches no route
            parameter: dict[str, object] = {"name": field_path, "in": "path", "required": True}
            if description:
                parameter["description"] = description
            parameter["schema"] = schema
            parameters.append(parameter)
            bound.add(field_path)
            return "{" + field_path + "}"

        path = re.sub(r"\{([A-Za-z0-9_.]+)(?:=([^}]*))?\}", variable, template)
        return path, parameters, bound

    @staticmethod
    def error_responses(documented: list[tuple[str, str]], has_body: bool) -> dict[str, object]:
        """The error responses of one operation: its documented errors by HTTP status, plus
        those every RPC can answer (as shared components where the RPC adds nothing)."""
        by_status: dict[int, list[str]] = {}
        for code, text in documented:
            by_status.setdefault(HTTP_STATUS[code], []).append(f"- `{code}`: {text}")
        responses: dict[str, object] = {}
        for status in sorted(set(by_status) | set(COMMON_RESPONSES)):
            if status not in by_status:
                responses[str(status)] = {"$ref": f"#/components/responses/{COMMON_RESPONSES[status]}"}
                continue
            responses[str(status)] = _error_response(status, by_status[status], {c for c, _ in documented})
        if has_body:
            responses = dict(sorted({**responses, "413": {"$ref": "#/components/responses/PayloadTooLarge"}}.items()))
        responses["default"] = {"$ref": "#/components/responses/Error"}
        return responses

    def operation(self, service: str, service_name: str, index: int,
                  method: descriptor_pb2.MethodDescriptorProto, file: str, path_prefix: tuple[int, ...],
                  rule: object, scope: str, binding: int) -> _Operation:
        verb = rule.WhichOneof("pattern")  # type: ignore[attr-defined]
        if verb not in ("get", "put", "post", "delete", "patch"):
            raise ValueError(f"{service}.{method.name}: {verb} bindings are not supported")
        if method.client_streaming:
            raise ValueError(f"{service}.{method.name}: client streaming cannot be transcoded")
        template = getattr(rule, verb)
        path, parameters, bound = self.path_template(template, method.input_type)
        comment, errors = _split_errors(self.protos.comment(file, (*path_prefix, 2, index)))
        full_name = f"{service}/{method.name}"
        description = [comment, f"Required scope: `{scope}`.", f"gRPC: `{full_name}`."]
        if method.server_streaming:
            description.insert(1, STREAMING_NOTE)
        body = rule.body  # type: ignore[attr-defined]
        operation: dict[str, object] = {
            "tags": [service_name],
            "summary": _summary(comment) if comment else method.name,
            "description": "\n\n".join(part for part in description if part),
            "operationId": f"{service_name}_{method.name}" + (f"_{binding}" if binding else ""),
        }
        if body == "*":
            schema = (self.component(method.input_type) if not bound
                      else self.message_schema(method.input_type, skip=frozenset(bound)))
        elif body:
            proto, text = self.resolve(method.input_type, body)
            schema = _described(self.field_schema(proto), text)
            bound = bound | {body}
        if body != "*":
            parameters += self.query_parameters(method.input_type, bound)
        if parameters:
            operation["parameters"] = parameters
        if body:
            body_required = body != "*" or bool(
                self.message_schema(method.input_type, skip=frozenset(bound)).get("required"))
            operation["requestBody"] = {"required": body_required,
                                        "content": {"application/json": {"schema": schema}}}
        response = self.component(method.output_type)
        response_body = rule.response_body  # type: ignore[attr-defined]
        if response_body:
            proto, _ = self.resolve(method.output_type, response_body)
            response = self.field_schema(proto)
        if method.server_streaming:
            response = {"type": "array", "items": response}
        operation["responses"] = {
            "200": {"description": f"`{method.output_type.lstrip('.')}`"
                                   + (", streamed" if method.server_streaming else ""),
                    "content": {"application/json": {"schema": response}}},
            **self.error_responses(errors, has_body=bool(body)),
        }
        operation["x-chat4all-grpc-method"] = full_name
        operation["x-chat4all-required-scope"] = scope
        if method.server_streaming:
            operation["x-chat4all-streaming"] = "server"
        return _Operation(path, verb, operation)


def build(descriptor_set: bytes, server_url: str) -> dict[str, object]:
    """The OpenAPI document (a plain dict) for every public RPC in the descriptor set."""
    protos = _Protos.load(descriptor_set)
    document = _Document(protos)
    tags: list[dict[str, str]] = []
    paths: dict[str, dict[str, object]] = {}
    for file in protos.files:
        for service_index, service in enumerate(file.service):
            full_service = f"{file.package}.{service.name}"
            public = False
            for method_index, method in enumerate(service.method):
                rules, scope = protos.http_rules(method), protos.required_scope(method)
                if not rules or scope is None:
                    continue  # internal: the front door refuses it
                public = True
                for binding, rule in enumerate(rules):
                    operation = document.operation(full_service, service.name, method_index, method,
                                                   file.name, (6, service_index), rule, scope, binding)
                    verbs = paths.setdefault(operation.path, {})
                    if operation.verb in verbs:
                        raise ValueError(f"{operation.verb.upper()} {operation.path} is bound twice")
                    verbs[operation.verb] = operation.spec
            if public:
                tag = {"name": service.name}
                description = protos.comment(file.name, (6, service_index))
                if description:
                    tag["description"] = description
                tags.append(tag)
    document.schemas[STATUS_SCHEMA] = {
        "type": "object",
        "description": "A gRPC status: what every error answers with, as JSON.",
        "properties": {
            "code": {**INT32, "description": "The gRPC status code (5 is NOT_FOUND, ...)."},
            "message": {"type": "string", "description": "What went wrong, for developers."},
            "details": {"type": "array", "description": "Typed details, e.g. google.rpc.RetryInfo.",
                        "items": WELL_KNOWN[".google.protobuf.Any"]},
        },
        "required": ["code", "message"],
    }
    document.build_components()
    return {
        "openapi": "3.0.3",
        "info": {"title": "Chat4All REST API", "version": "v1", "description": INTRO,
                 "license": {"name": "Apache-2.0"}},
        "servers": [{"url": server_url, "description": "The local front door (`scripts/platformctl up`)."}],
        "security": [{"ApiKey": []}, {"ApiKeyHeader": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(document.schemas.items())),
            "responses": {
                **{name: _error_response(status, [], set()) for status, name in COMMON_RESPONSES.items()},
                "PayloadTooLarge": {"description": PAYLOAD_TOO_LARGE,
                                    "content": _error_response(413, [], set())["content"]},
                "Error": {"description": "Any other gRPC status, under the HTTP status Envoy maps its "
                                         "code to.", "content": _error_response(500, [], set())["content"]},
            },
            "securitySchemes": {"ApiKey": {
                "type": "http", "scheme": "bearer", "bearerFormat": "c4a_<key_id>.<random>",
                "description": "An API key's secret (ApiKeyService.CreateApiKey) as "
                               "`Authorization: Bearer <secret>`.",
            }, "ApiKeyHeader": {
                "type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "The same secret in `x-api-key`, for clients that cannot set "
                               "`Authorization`.",
            }},
        },
    }


def render(document: dict[str, object]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def local_server_url() -> str:
    """The local front door, from the one file that holds the platform's ports."""
    config = tomllib.loads(PLATFORM_CONFIG.read_text())
    host = config.get("platform", {}).get("host", "127.0.0.1")
    return f"http://{host}:{config['envoy']['port']}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    descriptor_set, output = Path(argv[0]), Path(argv[1])
    text = render(build(descriptor_set.read_bytes(), local_server_url()))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
