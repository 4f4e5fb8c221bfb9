"""Files the emulator holds: uploads, injected inbound media, local URLs.

A file has a `file_id` (bot-specific, kind-prefixed like the real ones), a
`file_unique_id` (from the content, the same across bots) and a `file_path`
for `GET /file/bot<token>/<file_path>`.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import random
import struct
from typing import Any

# Leading bytes of real file ids, by kind (the rest is opaque).
_FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
}
_FOLDER = {"photo": "photos", "document": "documents", "video": "videos", "audio": "music", "voice": "voice"}
_DEFAULT_EXT = {"photo": "jpg", "document": "bin", "video": "mp4", "audio": "mp3", "voice": "oga"}
# Telegram keeps these thumbnail sizes (longest side) for a photo.
_PHOTO_THUMB_SIDES = (90, 320, 800)


class StoredFile:
    __slots__ = (
        "file_id", "file_unique_id", "kind", "file_path", "size", "sha256", "data",
        "mime_type", "file_name", "width", "height", "duration", "source_url", "photo_sizes",
    )

    def __init__(self, **fields: Any):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def as_api_file(self) -> dict[str, Any]:
        """The `File` object of getFile."""
        result: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.size is not None:
            result["file_size"] = self.size
        result["file_path"] = self.file_path
        return result

    def as_photo_size(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
        }
        if self.size is not None:
            result["file_size"] = self.size
        return result

    def as_media(self) -> Any:
        """The value of the message field for this file (`photo`, `document`, ...)."""
        if self.kind == "photo":
            return [size.as_photo_size() for size in (self.photo_sizes or [self])]
        result: dict[str, Any] = {}
        if self.kind in ("video", "audio", "voice"):
            result["duration"] = self.duration or 0
        if self.kind == "video":
            result["width"] = self.width or 0
            result["height"] = self.height or 0
        if self.file_name and self.kind != "voice":
            result["file_name"] = self.file_name
        if self.mime_type:
            result["mime_type"] = self.mime_type
        result["file_id"] = self.file_id
        result["file_unique_id"] = self.file_unique_id
        if self.size is not None:
            result["file_size"] = self.size
        return result


def image_info(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, extension) of a PNG, JPEG, GIF, WebP or BMP image, else None."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
            return width, height, "png"
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            width, height = struct.unpack("<HH", data[6:10])
            return width, height, "gif"
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"BM") and len(data) >= 26:
            width, height = struct.unpack("<ii", data[18:26])
            return width, abs(height), "bmp"
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int, str] | None:
    pos = 2
    size = len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 9 > size:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height, "jpg"
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int, str] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF, "webp"
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "webp"
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height, "webp"
    return None


class FileStore:
    """The files of one bot, by file_id and by file_path."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self.by_id: dict[str, StoredFile] = {}
        self.by_path: dict[str, StoredFile] = {}
        self._seq = 0

    def _file_id(self, kind: str) -> str:
        opaque = base64.urlsafe_b64encode(self._rng.randbytes(45)).decode().rstrip("=")
        return _FILE_ID_PREFIX.get(kind, "BQACAgIAAxkBAAI") + opaque

    @staticmethod
    def unique_id(key: bytes) -> str:
        return "AQAD" + base64.urlsafe_b64encode(hashlib.sha256(key).digest()[:12]).decode().rstrip("=")

    def add(
        self,
        kind: str,
        *,
        data: bytes | None = None,
        size: int | None = None,
        sha256: str | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
        source_url: str | None = None,
        ext: str | None = None,
    ) -> StoredFile:
        self._seq += 1
        if data is not None:
            sha256 = sha256 or hashlib.sha256(data).hexdigest()
            size = len(data)
        if ext is None and file_name and "." in file_name:
            ext = file_name.rsplit(".", 1)[1].lower()[:8]
        ext = ext or _DEFAULT_EXT.get(kind, "bin")
        if mime_type in (None, "", "application/octet-stream") and file_name and kind != "photo":
            mime_type = mimetypes.guess_type(file_name)[0] or mime_type
        key = bytes.fromhex(sha256) if sha256 else (source_url or f"{kind}:{self._seq}").encode()
        stored = StoredFile(
            file_id=self._file_id(kind),
            file_unique_id=self.unique_id(key),
            kind=kind,
            file_path=f"{_FOLDER.get(kind, 'documents')}/file_{self._seq}.{ext}",
            size=size,
            sha256=sha256,
            data=data,
            mime_type=mime_type,
            file_name=file_name,
            width=width,
            height=height,
            duration=duration,
            source_url=source_url,
        )
        self.by_id[stored.file_id] = stored
        self.by_path[stored.file_path] = stored
        return stored

    def add_photo(self, *, data: bytes | None, width: int, height: int, ext: str, **fields: Any) -> StoredFile:
        """A photo with Telegram's smaller sizes listed before it (`photo[-1]` is the largest)."""
        original = self.add("photo", data=data, width=width, height=height, ext=ext, **fields)
        sizes = []
        longest = max(width, height)
        for side in _PHOTO_THUMB_SIDES:
            if side < longest:
                scale = side / longest
                # Thumbnails point at the same bytes: the emulator does not resize.
                thumb = self.add(
                    "photo", data=data, width=max(1, round(width * scale)), height=max(1, round(height * scale)),
                    ext=ext, sha256=original.sha256, size=original.size, source_url=original.source_url,
                )
                thumb.file_unique_id = self.unique_id(f"{original.file_unique_id}:{side}".encode())
                sizes.append(thumb)
        sizes.append(original)
        for size in sizes:
            size.photo_sizes = sizes
        return original

    def register(self, stored_fields: dict[str, Any], kind: str) -> None:
        """Remember a file that arrived in a full injected Update (metadata only)."""
        file_id = stored_fields.get("file_id")
        if not isinstance(file_id, str) or file_id in self.by_id:
            return
        self._seq += 1
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=stored_fields.get("file_unique_id") or self.unique_id(file_id.encode()),
            kind=kind,
            file_path=f"{_FOLDER.get(kind, 'documents')}/file_{self._seq}.{_DEFAULT_EXT.get(kind, 'bin')}",
            size=stored_fields.get("file_size"),
            width=stored_fields.get("width"),
            height=stored_fields.get("height"),
            mime_type=stored_fields.get("mime_type"),
            file_name=stored_fields.get("file_name"),
            duration=stored_fields.get("duration"),
        )
        self.by_id[file_id] = stored
        self.by_path[stored.file_path] = stored

    def clear(self) -> None:
        self.by_id.clear()
        self.by_path.clear()
