from chat4all.channel.v1 import channel_pb2 as _channel_pb2
from chat4all.users.v1 import message_pb2 as _message_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateUserRequest(_message.Message):
    __slots__ = ("request_id", "display_name", "identities", "preferred_channel")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    display_name: str
    identities: _containers.RepeatedCompositeFieldContainer[_message_pb2.ExternalIdentity]
    preferred_channel: _channel_pb2.Channel
    def __init__(self, request_id: _Optional[str] = ..., display_name: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_message_pb2.ExternalIdentity, _Mapping]]] = ..., preferred_channel: _Optional[_Union[_channel_pb2.Channel, str]] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _message_pb2.User
    def __init__(self, user: _Optional[_Union[_message_pb2.User, _Mapping]] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _message_pb2.User
    def __init__(self, user: _Optional[_Union[_message_pb2.User, _Mapping]] = ...) -> None: ...

class LinkIdentityRequest(_message.Message):
    __slots__ = ("request_id", "user_id", "identity")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_id: str
    identity: _message_pb2.ExternalIdentity
    def __init__(self, request_id: _Optional[str] = ..., user_id: _Optional[str] = ..., identity: _Optional[_Union[_message_pb2.ExternalIdentity, _Mapping]] = ...) -> None: ...

class LinkIdentityResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _message_pb2.User
    def __init__(self, user: _Optional[_Union[_message_pb2.User, _Mapping]] = ...) -> None: ...

class UnlinkIdentityRequest(_message.Message):
    __slots__ = ("request_id", "user_id", "channel", "external_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    user_id: str
    channel: _channel_pb2.Channel
    external_id: str
    def __init__(self, request_id: _Optional[str] = ..., user_id: _Optional[str] = ..., channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., external_id: _Optional[str] = ...) -> None: ...

class UnlinkIdentityResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _message_pb2.User
    def __init__(self, user: _Optional[_Union[_message_pb2.User, _Mapping]] = ...) -> None: ...

class ResolveIdentityRequest(_message.Message):
    __slots__ = ("channel", "external_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    channel: _channel_pb2.Channel
    external_id: str
    def __init__(self, channel: _Optional[_Union[_channel_pb2.Channel, str]] = ..., external_id: _Optional[str] = ...) -> None: ...

class ResolveIdentityResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _message_pb2.User
    def __init__(self, user: _Optional[_Union[_message_pb2.User, _Mapping]] = ...) -> None: ...

class MergeUsersRequest(_message.Message):
    __slots__ = ("request_id", "source_user_id", "target_user_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_USER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    source_user_id: str
    target_user_id: str
    def __init__(self, request_id: _Optional[str] = ..., source_user_id: _Optional[str] = ..., target_user_id: _Optional[str] = ...) -> None: ...

class MergeUsersResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: _message_pb2.User
    def __init__(self, user: _Optional[_Union[_message_pb2.User, _Mapping]] = ...) -> None: ...
