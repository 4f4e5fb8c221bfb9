"""A message's attachments as the file service knows them.

SendMessage accepts only files that exist, belong to the calling client and to the sender,
and are CLEAN, and copies their name, detected type and size into the message. The file
service is asked on the client's behalf (services/runtime/tenancy.py), so another client's
file is NOT_FOUND, as an unknown one. At each delivery attempt the router
asks again, for the file's current state and a fresh presigned URL the connector fetches
the bytes from (URLs expire; a retry may come much later).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import grpc
from chat4all.files.v1 import message_pb2 as file_pb2
from chat4all.files.v1 import request_response_pb2 as file_requests
from chat4all.files.v1 import service_pb2_grpc as file_grpc
from chat4all.messaging.v1 import message_pb2

from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from services.runtime.tenancy import client_metadata
from services.runtime.validation import require_uuid

F = file_pb2.FileState
_NOT_YET = {F.FILE_STATE_UPLOADING, F.FILE_STATE_PROCESSING}
# How long a connector waits before asking again about a file still being processed.
PENDING_RETRY_SECONDS = 1.0


class AttachmentRefused(Exception):
    """The file can never be sent (gone, quarantined, failed): the delivery fails for good."""


class AttachmentPending(Exception):
    """Not sendable yet (still processing, or the file service is unreachable): try later."""


@dataclasses.dataclass
class Attachments:
    files: file_grpc.FileServiceStub
    timeout_seconds: float = 5.0

    async def for_send(
        self, attachments: Sequence[message_pb2.Attachment], sender_user_id: str, caller: str | None = None
    ) -> list[message_pb2.Attachment]:
        """The client's attachments with the file service's metadata, or the reason they cannot be sent."""
        seen: set[str] = set()
        described = []
        for index, attachment in enumerate(attachments):
            field = f"content.attachments[{index}].file_id"
            file_id = require_uuid(attachment.file_id, field)
            if file_id in seen:
                raise InvalidArgument(f"{field}: file {file_id} is attached twice")
            seen.add(file_id)
            file = await self._file(file_id, field, caller)
            if file.owner_user_id != sender_user_id:
                raise PermissionDenied(f"{field}: file {file_id} does not belong to user {sender_user_id}")
            if file.state != F.FILE_STATE_CLEAN:
                raise FailedPrecondition(f"{field}: file {file_id} is {_state(file)}; only CLEAN files can be attached")
            described.append(_described(attachment, file))
        return described

    async def described(self, attachments: Sequence[message_pb2.Attachment]) -> list[message_pb2.Attachment]:
        """Attachments a connector imported, with the metadata the file service has so far. One
        it does not know stays as given (retrying would hold up the chat for good); its delivery
        fails later, with the reason."""
        described = []
        for attachment in attachments:
            try:
                described.append(_described(attachment, await self._file(attachment.file_id, "attachment")))
            except NotFound:
                described.append(attachment)
        return described

    async def for_connector(self, content: message_pb2.MessageContent) -> message_pb2.MessageContent:
        """A copy of `content` whose every attachment carries a fresh download URL."""
        ready = message_pb2.MessageContent()
        ready.CopyFrom(content)
        for attachment in ready.attachments:
            try:
                file = await self._file(attachment.file_id, "attachment")
            except NotFound as missing:
                raise AttachmentRefused(missing.message) from None
            except Unavailable as outage:
                raise AttachmentPending(outage.message) from None
            if file.state in _NOT_YET:
                raise AttachmentPending(f"file {file.file_id} is {_state(file)}")
            if file.state != F.FILE_STATE_CLEAN:
                raise AttachmentRefused(f"file {file.file_id} is {_state(file)}")
            attachment.CopyFrom(_described(attachment, file))
            try:
                url = await self.files.GetDownloadUrl(
                    file_requests.GetDownloadUrlRequest(file_id=file.file_id), timeout=self.timeout_seconds
                )
            except grpc.aio.AioRpcError as error:
                raise AttachmentPending(f"no download URL for file {file.file_id}: {error.code().name}") from None
            attachment.download_url = url.url
            attachment.download_expire_time.CopyFrom(url.expire_time)
        return ready

    async def _file(self, file_id: str, field: str, caller: str | None = None) -> file_pb2.File:
        try:
            request = file_requests.GetFileRequest(file_id=file_id)
            return (await self.files.GetFile(request, timeout=self.timeout_seconds, metadata=client_metadata(caller))).file
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise NotFound(f"{field}: no file {file_id}") from None
            raise Unavailable(f"looking up file {file_id}: {error.code().name}") from None


def _described(attachment: message_pb2.Attachment, file: file_pb2.File) -> message_pb2.Attachment:
    return message_pb2.Attachment(
        file_id=file.file_id, caption=attachment.caption, filename=file.filename,
        content_type=file.detected_content_type or file.declared_content_type, size_bytes=file.size_bytes,
    )


def _state(file: file_pb2.File) -> str:
    name = F.Name(file.state).removeprefix("FILE_STATE_")
    return f"{name} ({file.failure_reason})" if file.failure_reason else name
