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

class ConversationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERSATION_TYPE_UNSPECIFIED: _ClassVar[ConversationType]
    CONVERSATION_TYPE_DIRECT: _ClassVar[ConversationType]
    CONVERSATION_TYPE_GROUP: _ClassVar[ConversationType]

class MemberRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBER_ROLE_UNSPECIFIED: _ClassVar[MemberRole]
    MEMBER_ROLE_OWNER: _ClassVar[MemberRole]
    MEMBER_ROLE_ADMIN: _ClassVar[MemberRole]
    MEMBER_ROLE_MEMBER: _ClassVar[MemberRole]

class MembershipAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBERSHIP_ACTION_UNSPECIFIED: _ClassVar[MembershipAction]
    MEMBERSHIP_ACTION_ADDED: _ClassVar[MembershipAction]
    MEMBERSHIP_ACTION_REMOVED: _ClassVar[MembershipAction]
CONVERSATION_TYPE_UNSPECIFIED: ConversationType
CONVERSATION_TYPE_DIRECT: ConversationType
CONVERSATION_TYPE_GROUP: ConversationType
MEMBER_ROLE_UNSPECIFIED: MemberRole
MEMBER_ROLE_OWNER: MemberRole
MEMBER_ROLE_ADMIN: MemberRole
MEMBER_ROLE_MEMBER: MemberRole
MEMBERSHIP_ACTION_UNSPECIFIED: MembershipAction
MEMBERSHIP_ACTION_ADDED: MembershipAction
MEMBERSHIP_ACTION_REMOVED: MembershipAction

class Conversation(_message.Message):
    __slots__ = ("conversation_id", "type", "title", "members", "platform_binding", "create_time", "update_time")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_BINDING_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    type: ConversationType
    title: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    platform_binding: PlatformBinding
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, conversation_id: _Optional[str] = ..., type: _Optional[_Union[ConversationType, str]] = ..., title: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., platform_binding: _Optional[_Union[PlatformBinding, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("user_id", "role", "preferred_channel", "join_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    JOIN_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role: MemberRole
    preferred_channel: _channel_pb2.Channel
    join_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., role: _Optional[_Union[MemberRole, str]] = ..., preferred_channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., join_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PlatformBinding(_message.Message):
    __slots__ = ("channel", "account_id", "external_group_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    channel: _channel_pb2.Channel
    account_id: str
    external_group_id: str
    def __init__(self, channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., account_id: _Optional[str] = ..., external_group_id: _Optional[str] = ...) -> None: ...

class MembershipChange(_message.Message):
    __slots__ = ("user_id", "action", "role", "reason", "change_time", "request_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    action: MembershipAction
    role: MemberRole
    reason: str
    change_time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, user_id: _Optional[str] = ..., action: _Optional[_Union[MembershipAction, str]] = ..., role: _Optional[_Union[MemberRole, str]] = ..., reason: _Optional[str] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...
