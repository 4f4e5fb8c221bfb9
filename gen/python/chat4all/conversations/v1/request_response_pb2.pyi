from chat4all.conversations.v1 import message_pb2 as _message_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateConversationRequest(_message.Message):
    __slots__ = ("request_id", "type", "title", "members", "platform_binding")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_BINDING_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    type: _message_pb2.ConversationType
    title: str
    members: _containers.RepeatedCompositeFieldContainer[_message_pb2.Member]
    platform_binding: _message_pb2.PlatformBinding
    def __init__(self, request_id: _Optional[str] = ..., type: _Optional[_Union[_message_pb2.ConversationType, str]] = ..., title: _Optional[str] = ..., members: _Optional[_Iterable[_Union[_message_pb2.Member, _Mapping]]] = ..., platform_binding: _Optional[_Union[_message_pb2.PlatformBinding, _Mapping]] = ...) -> None: ...

class CreateConversationResponse(_message.Message):
    __slots__ = ("conversation",)
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    conversation: _message_pb2.Conversation
    def __init__(self, conversation: _Optional[_Union[_message_pb2.Conversation, _Mapping]] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class GetConversationResponse(_message.Message):
    __slots__ = ("conversation",)
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    conversation: _message_pb2.Conversation
    def __init__(self, conversation: _Optional[_Union[_message_pb2.Conversation, _Mapping]] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "member_user_id", "platform_binding")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MEMBER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_BINDING_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    member_user_id: str
    platform_binding: _message_pb2.PlatformBinding
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., member_user_id: _Optional[str] = ..., platform_binding: _Optional[_Union[_message_pb2.PlatformBinding, _Mapping]] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "next_page_token")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[_message_pb2.Conversation]
    next_page_token: str
    def __init__(self, conversations: _Optional[_Iterable[_Union[_message_pb2.Conversation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AddMemberRequest(_message.Message):
    __slots__ = ("request_id", "conversation_id", "member")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversation_id: str
    member: _message_pb2.Member
    def __init__(self, request_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., member: _Optional[_Union[_message_pb2.Member, _Mapping]] = ...) -> None: ...

class AddMemberResponse(_message.Message):
    __slots__ = ("conversation",)
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    conversation: _message_pb2.Conversation
    def __init__(self, conversation: _Optional[_Union[_message_pb2.Conversation, _Mapping]] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("request_id", "conversation_id", "user_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversation_id: str
    user_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RemoveMemberResponse(_message.Message):
    __slots__ = ("conversation",)
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    conversation: _message_pb2.Conversation
    def __init__(self, conversation: _Optional[_Union[_message_pb2.Conversation, _Mapping]] = ...) -> None: ...

class ListMembershipChangesRequest(_message.Message):
    __slots__ = ("conversation_id", "page_size", "page_token")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    page_size: int
    page_token: str
    def __init__(self, conversation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMembershipChangesResponse(_message.Message):
    __slots__ = ("membership_changes", "next_page_token")
    MEMBERSHIP_CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    membership_changes: _containers.RepeatedCompositeFieldContainer[_message_pb2.MembershipChange]
    next_page_token: str
    def __init__(self, membership_changes: _Optional[_Iterable[_Union[_message_pb2.MembershipChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApplyUserMergeRequest(_message.Message):
    __slots__ = ("request_id", "source_user_id", "target_user_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_USER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    source_user_id: str
    target_user_id: str
    def __init__(self, request_id: _Optional[str] = ..., source_user_id: _Optional[str] = ..., target_user_id: _Optional[str] = ...) -> None: ...

class ApplyUserMergeResponse(_message.Message):
    __slots__ = ("conversation_ids",)
    CONVERSATION_IDS_FIELD_NUMBER: _ClassVar[int]
    conversation_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, conversation_ids: _Optional[_Iterable[str]] = ...) -> None: ...
