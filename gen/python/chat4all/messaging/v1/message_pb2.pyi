import datetime

from chat4all.channel.v1 import channel_pb2 as _channel_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_ACCEPTED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DISPATCHED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_RETRYING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_SENT: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_READ: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DEAD_LETTERED: _ClassVar[DeliveryStatus]

class DeadLetterState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEAD_LETTER_STATE_UNSPECIFIED: _ClassVar[DeadLetterState]
    DEAD_LETTER_STATE_PENDING: _ClassVar[DeadLetterState]
    DEAD_LETTER_STATE_REPLAYED: _ClassVar[DeadLetterState]
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_ACCEPTED: DeliveryStatus
DELIVERY_STATUS_DISPATCHED: DeliveryStatus
DELIVERY_STATUS_RETRYING: DeliveryStatus
DELIVERY_STATUS_SENT: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_READ: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus
DELIVERY_STATUS_DEAD_LETTERED: DeliveryStatus
DEAD_LETTER_STATE_UNSPECIFIED: DeadLetterState
DEAD_LETTER_STATE_PENDING: DeadLetterState
DEAD_LETTER_STATE_REPLAYED: DeadLetterState

class Message(_message.Message):
    __slots__ = ("message_id", "conversation_id", "sender_user_id", "content", "origin", "create_time", "deliveries")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    conversation_id: str
    sender_user_id: str
    content: MessageContent
    origin: MessageOrigin
    create_time: _timestamp_pb2.Timestamp
    deliveries: _containers.RepeatedCompositeFieldContainer[RecipientDelivery]
    def __init__(self, message_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., sender_user_id: _Optional[str] = ..., content: _Optional[_Union[MessageContent, _Mapping]] = ..., origin: _Optional[_Union[MessageOrigin, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deliveries: _Optional[_Iterable[_Union[RecipientDelivery, _Mapping]]] = ...) -> None: ...

class MessageContent(_message.Message):
    __slots__ = ("text", "template", "attachments")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    text: str
    template: Template
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    def __init__(self, text: _Optional[str] = ..., template: _Optional[_Union[Template, _Mapping]] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("name", "language", "parameters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    language: str
    parameters: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., language: _Optional[str] = ..., parameters: _Optional[_Iterable[str]] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("file_id", "caption", "filename", "content_type", "size_bytes", "download_url", "download_expire_time")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    caption: str
    filename: str
    content_type: str
    size_bytes: int
    download_url: str
    download_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, file_id: _Optional[str] = ..., caption: _Optional[str] = ..., filename: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., download_url: _Optional[str] = ..., download_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MessageOrigin(_message.Message):
    __slots__ = ("internal", "inbound")
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    internal: InternalOrigin
    inbound: InboundOrigin
    def __init__(self, internal: _Optional[_Union[InternalOrigin, _Mapping]] = ..., inbound: _Optional[_Union[InboundOrigin, _Mapping]] = ...) -> None: ...

class InternalOrigin(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class InboundOrigin(_message.Message):
    __slots__ = ("channel", "account_id", "external_message_id", "external_sender_id", "external_chat_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    channel: _channel_pb2.Channel
    account_id: str
    external_message_id: str
    external_sender_id: str
    external_chat_id: str
    def __init__(self, channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., account_id: _Optional[str] = ..., external_message_id: _Optional[str] = ..., external_sender_id: _Optional[str] = ..., external_chat_id: _Optional[str] = ...) -> None: ...

class Recipient(_message.Message):
    __slots__ = ("user_id", "channel", "external_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channel: _channel_pb2.Channel
    external_id: str
    def __init__(self, user_id: _Optional[str] = ..., channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., external_id: _Optional[str] = ...) -> None: ...

class RecipientDelivery(_message.Message):
    __slots__ = ("recipient", "status", "update_time", "platform_message_ids", "attempt_count", "history")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    recipient: Recipient
    status: DeliveryStatus
    update_time: _timestamp_pb2.Timestamp
    platform_message_ids: _containers.RepeatedScalarFieldContainer[str]
    attempt_count: int
    history: _containers.RepeatedCompositeFieldContainer[StatusChange]
    def __init__(self, recipient: _Optional[_Union[Recipient, _Mapping]] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., platform_message_ids: _Optional[_Iterable[str]] = ..., attempt_count: _Optional[int] = ..., history: _Optional[_Iterable[_Union[StatusChange, _Mapping]]] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("status", "change_time", "record_time", "reason", "platform_error_code", "attempt", "next_attempt_time")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    RECORD_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    status: DeliveryStatus
    change_time: _timestamp_pb2.Timestamp
    record_time: _timestamp_pb2.Timestamp
    reason: str
    platform_error_code: str
    attempt: int
    next_attempt_time: _timestamp_pb2.Timestamp
    def __init__(self, status: _Optional[_Union[DeliveryStatus, str]] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., platform_error_code: _Optional[str] = ..., attempt: _Optional[int] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConversationEvent(_message.Message):
    __slots__ = ("cursor", "conversation_id", "occur_time", "message_created", "delivery_status_changed")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_CREATED_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_STATUS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    conversation_id: str
    occur_time: _timestamp_pb2.Timestamp
    message_created: Message
    delivery_status_changed: DeliveryUpdate
    def __init__(self, cursor: _Optional[str] = ..., conversation_id: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_created: _Optional[_Union[Message, _Mapping]] = ..., delivery_status_changed: _Optional[_Union[DeliveryUpdate, _Mapping]] = ...) -> None: ...

class DeliveryUpdate(_message.Message):
    __slots__ = ("message_id", "recipient", "change", "current_status")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    recipient: Recipient
    change: StatusChange
    current_status: DeliveryStatus
    def __init__(self, message_id: _Optional[str] = ..., recipient: _Optional[_Union[Recipient, _Mapping]] = ..., change: _Optional[_Union[StatusChange, _Mapping]] = ..., current_status: _Optional[_Union[DeliveryStatus, str]] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("dead_letter_id", "message_id", "conversation_id", "recipient", "reason", "platform_error_code", "attempt_count", "first_failure_time", "last_failure_time", "state", "replay_time")
    DEAD_LETTER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_FAILURE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REPLAY_TIME_FIELD_NUMBER: _ClassVar[int]
    dead_letter_id: str
    message_id: str
    conversation_id: str
    recipient: Recipient
    reason: str
    platform_error_code: str
    attempt_count: int
    first_failure_time: _timestamp_pb2.Timestamp
    last_failure_time: _timestamp_pb2.Timestamp
    state: DeadLetterState
    replay_time: _timestamp_pb2.Timestamp
    def __init__(self, dead_letter_id: _Optional[str] = ..., message_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., recipient: _Optional[_Union[Recipient, _Mapping]] = ..., reason: _Optional[str] = ..., platform_error_code: _Optional[str] = ..., attempt_count: _Optional[int] = ..., first_failure_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_failure_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[DeadLetterState, str]] = ..., replay_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
