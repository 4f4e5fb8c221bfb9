import datetime

from chat4all.channel.v1 import channel_pb2 as _channel_pb2
from chat4all.connector.v1 import message_pb2 as _message_pb2
from chat4all.conversations.v1 import message_pb2 as _message_pb2_1
from chat4all.messaging.v1 import message_pb2 as _message_pb2_1_1
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "conversation_id", "occur_time", "message_accepted", "inbound_message_received", "delivery_status_changed", "dead_lettered", "dead_letter_replayed")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    INBOUND_MESSAGE_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_STATUS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_REPLAYED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    conversation_id: str
    occur_time: _timestamp_pb2.Timestamp
    message_accepted: MessageAccepted
    inbound_message_received: InboundMessageReceived
    delivery_status_changed: DeliveryStatusChanged
    dead_lettered: DeadLettered
    dead_letter_replayed: DeadLetterReplayed
    def __init__(self, event_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_accepted: _Optional[_Union[MessageAccepted, _Mapping]] = ..., inbound_message_received: _Optional[_Union[InboundMessageReceived, _Mapping]] = ..., delivery_status_changed: _Optional[_Union[DeliveryStatusChanged, _Mapping]] = ..., dead_lettered: _Optional[_Union[DeadLettered, _Mapping]] = ..., dead_letter_replayed: _Optional[_Union[DeadLetterReplayed, _Mapping]] = ...) -> None: ...

class MessageAccepted(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2_1_1.Message
    def __init__(self, message: _Optional[_Union[_message_pb2_1_1.Message, _Mapping]] = ...) -> None: ...

class InboundMessageReceived(_message.Message):
    __slots__ = ("channel", "account_id", "external_sender_id", "external_sender_display_name", "external_message_id", "external_chat_id", "chat_type", "content", "platform_time", "receive_time", "media")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_SENDER_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_TIME_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    channel: _channel_pb2.Channel
    account_id: str
    external_sender_id: str
    external_sender_display_name: str
    external_message_id: str
    external_chat_id: str
    chat_type: _message_pb2_1.ConversationType
    content: _message_pb2_1_1.MessageContent
    platform_time: _timestamp_pb2.Timestamp
    receive_time: _timestamp_pb2.Timestamp
    media: _containers.RepeatedCompositeFieldContainer[PlatformMedia]
    def __init__(self, channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., account_id: _Optional[str] = ..., external_sender_id: _Optional[str] = ..., external_sender_display_name: _Optional[str] = ..., external_message_id: _Optional[str] = ..., external_chat_id: _Optional[str] = ..., chat_type: _Optional[_Union[_message_pb2_1.ConversationType, str]] = ..., content: _Optional[_Union[_message_pb2_1_1.MessageContent, _Mapping]] = ..., platform_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., media: _Optional[_Iterable[_Union[PlatformMedia, _Mapping]]] = ...) -> None: ...

class PlatformMedia(_message.Message):
    __slots__ = ("kind", "media_id", "url", "mime_type", "sha256", "caption", "filename")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    kind: _message_pb2.ContentKind
    media_id: str
    url: str
    mime_type: str
    sha256: str
    caption: str
    filename: str
    def __init__(self, kind: _Optional[_Union[_message_pb2.ContentKind, str]] = ..., media_id: _Optional[str] = ..., url: _Optional[str] = ..., mime_type: _Optional[str] = ..., sha256: _Optional[str] = ..., caption: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class DeliveryStatusChanged(_message.Message):
    __slots__ = ("message_id", "recipient", "change", "platform_message_id")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    recipient: _message_pb2_1_1.Recipient
    change: _message_pb2_1_1.StatusChange
    platform_message_id: str
    def __init__(self, message_id: _Optional[str] = ..., recipient: _Optional[_Union[_message_pb2_1_1.Recipient, _Mapping]] = ..., change: _Optional[_Union[_message_pb2_1_1.StatusChange, _Mapping]] = ..., platform_message_id: _Optional[str] = ...) -> None: ...

class DeadLettered(_message.Message):
    __slots__ = ("dead_letter", "message")
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    dead_letter: _message_pb2_1_1.DeadLetter
    message: _message_pb2_1_1.Message
    def __init__(self, dead_letter: _Optional[_Union[_message_pb2_1_1.DeadLetter, _Mapping]] = ..., message: _Optional[_Union[_message_pb2_1_1.Message, _Mapping]] = ...) -> None: ...

class DeadLetterReplayed(_message.Message):
    __slots__ = ("dead_letter", "message", "request_id")
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    dead_letter: _message_pb2_1_1.DeadLetter
    message: _message_pb2_1_1.Message
    request_id: str
    def __init__(self, dead_letter: _Optional[_Union[_message_pb2_1_1.DeadLetter, _Mapping]] = ..., message: _Optional[_Union[_message_pb2_1_1.Message, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...
