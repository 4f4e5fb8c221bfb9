import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FileState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_STATE_UNSPECIFIED: _ClassVar[FileState]
    FILE_STATE_UPLOADING: _ClassVar[FileState]
    FILE_STATE_PROCESSING: _ClassVar[FileState]
    FILE_STATE_CLEAN: _ClassVar[FileState]
    FILE_STATE_QUARANTINED: _ClassVar[FileState]
    FILE_STATE_FAILED: _ClassVar[FileState]
FILE_STATE_UNSPECIFIED: FileState
FILE_STATE_UPLOADING: FileState
FILE_STATE_PROCESSING: FileState
FILE_STATE_CLEAN: FileState
FILE_STATE_QUARANTINED: FileState
FILE_STATE_FAILED: FileState

class File(_message.Message):
    __slots__ = ("file_id", "filename", "declared_content_type", "detected_content_type", "size_bytes", "sha256", "state", "failure_reason", "thumbnail_file_id", "create_time", "update_time", "owner_user_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DECLARED_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DETECTED_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FILE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    filename: str
    declared_content_type: str
    detected_content_type: str
    size_bytes: int
    sha256: str
    state: FileState
    failure_reason: str
    thumbnail_file_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    owner_user_id: str
    def __init__(self, file_id: _Optional[str] = ..., filename: _Optional[str] = ..., declared_content_type: _Optional[str] = ..., detected_content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., state: _Optional[_Union[FileState, str]] = ..., failure_reason: _Optional[str] = ..., thumbnail_file_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., owner_user_id: _Optional[str] = ...) -> None: ...

class UploadPartUrl(_message.Message):
    __slots__ = ("part_number", "url")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    url: str
    def __init__(self, part_number: _Optional[int] = ..., url: _Optional[str] = ...) -> None: ...

class CompletedPart(_message.Message):
    __slots__ = ("part_number", "etag")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    etag: str
    def __init__(self, part_number: _Optional[int] = ..., etag: _Optional[str] = ...) -> None: ...
