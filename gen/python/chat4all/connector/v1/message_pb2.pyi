import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTENT_KIND_UNSPECIFIED: _ClassVar[ContentKind]
    CONTENT_KIND_TEXT: _ClassVar[ContentKind]
    CONTENT_KIND_TEMPLATE: _ClassVar[ContentKind]
    CONTENT_KIND_IMAGE: _ClassVar[ContentKind]
    CONTENT_KIND_AUDIO: _ClassVar[ContentKind]
    CONTENT_KIND_VIDEO: _ClassVar[ContentKind]
    CONTENT_KIND_DOCUMENT: _ClassVar[ContentKind]
    CONTENT_KIND_STICKER: _ClassVar[ContentKind]

class RateLimitScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATE_LIMIT_SCOPE_UNSPECIFIED: _ClassVar[RateLimitScope]
    RATE_LIMIT_SCOPE_ACCOUNT: _ClassVar[RateLimitScope]
    RATE_LIMIT_SCOPE_RECIPIENT: _ClassVar[RateLimitScope]
    RATE_LIMIT_SCOPE_GROUP: _ClassVar[RateLimitScope]

class CircuitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_STATE_UNSPECIFIED: _ClassVar[CircuitState]
    CIRCUIT_STATE_CLOSED: _ClassVar[CircuitState]
    CIRCUIT_STATE_OPEN: _ClassVar[CircuitState]
    CIRCUIT_STATE_HALF_OPEN: _ClassVar[CircuitState]
CONTENT_KIND_UNSPECIFIED: ContentKind
CONTENT_KIND_TEXT: ContentKind
CONTENT_KIND_TEMPLATE: ContentKind
CONTENT_KIND_IMAGE: ContentKind
CONTENT_KIND_AUDIO: ContentKind
CONTENT_KIND_VIDEO: ContentKind
CONTENT_KIND_DOCUMENT: ContentKind
CONTENT_KIND_STICKER: ContentKind
RATE_LIMIT_SCOPE_UNSPECIFIED: RateLimitScope
RATE_LIMIT_SCOPE_ACCOUNT: RateLimitScope
RATE_LIMIT_SCOPE_RECIPIENT: RateLimitScope
RATE_LIMIT_SCOPE_GROUP: RateLimitScope
CIRCUIT_STATE_UNSPECIFIED: CircuitState
CIRCUIT_STATE_CLOSED: CircuitState
CIRCUIT_STATE_OPEN: CircuitState
CIRCUIT_STATE_HALF_OPEN: CircuitState

class MediaLimit(_message.Message):
    __slots__ = ("content_kind", "max_size_bytes")
    CONTENT_KIND_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    content_kind: ContentKind
    max_size_bytes: int
    def __init__(self, content_kind: _Optional[_Union[ContentKind, str]] = ..., max_size_bytes: _Optional[int] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("scope", "max_messages", "period", "content_kinds", "platform_error_code")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_KINDS_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    scope: RateLimitScope
    max_messages: int
    period: _duration_pb2.Duration
    content_kinds: _containers.RepeatedScalarFieldContainer[ContentKind]
    platform_error_code: str
    def __init__(self, scope: _Optional[_Union[RateLimitScope, str]] = ..., max_messages: _Optional[int] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., content_kinds: _Optional[_Iterable[_Union[ContentKind, str]]] = ..., platform_error_code: _Optional[str] = ...) -> None: ...
