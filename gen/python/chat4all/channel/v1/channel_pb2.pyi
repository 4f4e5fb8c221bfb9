from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_INTERNAL: _ClassVar[Channel]
    CHANNEL_WHATSAPP: _ClassVar[Channel]
    CHANNEL_INSTAGRAM: _ClassVar[Channel]
    CHANNEL_TELEGRAM: _ClassVar[Channel]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_INTERNAL: Channel
CHANNEL_WHATSAPP: Channel
CHANNEL_INSTAGRAM: Channel
CHANNEL_TELEGRAM: Channel
