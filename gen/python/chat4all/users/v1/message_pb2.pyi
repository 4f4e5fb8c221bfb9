import datetime

from chat4all.channel.v1 import channel_pb2 as _channel_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("user_id", "display_name", "identities", "preferred_channel", "create_time", "merged_into_user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    display_name: str
    identities: _containers.RepeatedCompositeFieldContainer[ExternalIdentity]
    preferred_channel: _channel_pb2.Channel
    create_time: _timestamp_pb2.Timestamp
    merged_into_user_id: str
    def __init__(self, user_id: _Optional[str] = ..., display_name: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[ExternalIdentity, _Mapping]]] = ..., preferred_channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., merged_into_user_id: _Optional[str] = ...) -> None: ...

class ExternalIdentity(_message.Message):
    __slots__ = ("channel", "external_id", "display_name", "link_time")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LINK_TIME_FIELD_NUMBER: _ClassVar[int]
    channel: _channel_pb2.Channel
    external_id: str
    display_name: str
    link_time: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., external_id: _Optional[str] = ..., display_name: _Optional[str] = ..., link_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
