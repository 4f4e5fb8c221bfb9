import datetime

from chat4all.channel.v1 import channel_pb2 as _channel_pb2
from chat4all.connector.v1 import message_pb2 as _message_pb2
from chat4all.messaging.v1 import message_pb2 as _message_pb2_1
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SendMessageRequest(_message.Message):
    __slots__ = ("message_id", "conversation_id", "account_id", "sender_user_id", "sender_display_name", "recipient", "content", "attempt")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    conversation_id: str
    account_id: str
    sender_user_id: str
    sender_display_name: str
    recipient: _message_pb2_1.Recipient
    content: _message_pb2_1.MessageContent
    attempt: int
    def __init__(self, message_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., account_id: _Optional[str] = ..., sender_user_id: _Optional[str] = ..., sender_display_name: _Optional[str] = ..., recipient: _Optional[_Union[_message_pb2_1.Recipient, _Mapping]] = ..., content: _Optional[_Union[_message_pb2_1.MessageContent, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("platform_message_ids", "status", "send_time")
    PLATFORM_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    platform_message_ids: _containers.RepeatedScalarFieldContainer[str]
    status: _message_pb2_1.DeliveryStatus
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, platform_message_ids: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[_message_pb2_1.DeliveryStatus, str]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class GetCapabilitiesResponse(_message.Message):
    __slots__ = ("channel", "content_kinds", "media_limits", "rate_limits", "reply_window", "reported_statuses", "supports_groups", "max_text_length")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_KINDS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_LIMITS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    REPLY_WINDOW_FIELD_NUMBER: _ClassVar[int]
    REPORTED_STATUSES_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    channel: _channel_pb2.Channel
    content_kinds: _containers.RepeatedScalarFieldContainer[_message_pb2.ContentKind]
    media_limits: _containers.RepeatedCompositeFieldContainer[_message_pb2.MediaLimit]
    rate_limits: _containers.RepeatedCompositeFieldContainer[_message_pb2.RateLimit]
    reply_window: _duration_pb2.Duration
    reported_statuses: _containers.RepeatedScalarFieldContainer[_message_pb2_1.DeliveryStatus]
    supports_groups: bool
    max_text_length: int
    def __init__(self, channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., content_kinds: _Optional[_Iterable[_Union[_message_pb2.ContentKind, str]]] = ..., media_limits: _Optional[_Iterable[_Union[_message_pb2.MediaLimit, _Mapping]]] = ..., rate_limits: _Optional[_Iterable[_Union[_message_pb2.RateLimit, _Mapping]]] = ..., reply_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reported_statuses: _Optional[_Iterable[_Union[_message_pb2_1.DeliveryStatus, str]]] = ..., supports_groups: _Optional[bool] = ..., max_text_length: _Optional[int] = ...) -> None: ...

class CheckHealthRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class CheckHealthResponse(_message.Message):
    __slots__ = ("platform_reachable", "circuit_state", "circuit_retry_time", "latency", "check_time", "detail")
    PLATFORM_REACHABLE_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_STATE_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_RETRY_TIME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    platform_reachable: bool
    circuit_state: _message_pb2.CircuitState
    circuit_retry_time: _timestamp_pb2.Timestamp
    latency: _duration_pb2.Duration
    check_time: _timestamp_pb2.Timestamp
    detail: str
    def __init__(self, platform_reachable: _Optional[bool] = ..., circuit_state: _Optional[_Union[_message_pb2.CircuitState, str]] = ..., circuit_retry_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...
