"""Thumbnails of images (Pillow): at most 320x320, JPEG, or PNG when the image is transparent.

Pillow blocks and decodes untrusted bytes: `make_thumbnail` runs in a worker thread, opens only
the formats below, and refuses an image with more pixels than allowed before decoding it (a small
file can declare a huge canvas: a decompression bomb). Image.MAX_IMAGE_PIXELS, set to the same
limit, is Pillow's own guard behind ours.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps

MAX_SIDE = 320
# Detected content type -> Pillow format: the images we make thumbnails of.
SOURCE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
_JPEG_QUALITY = 85


class NoThumbnail(Exception):
    """The image cannot have a thumbnail (too many pixels, undecodable); the file is still fine."""


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str  # image/jpeg, or image/png for a transparent image
    width: int
    height: int


def make_thumbnail(source: BinaryIO, content_type: str, max_pixels: int) -> Thumbnail:
    """The thumbnail of the image in `source` (blocking: run it in a thread)."""
    # Process-wide, and the same in every call: Pillow refuses past twice this, at open.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(source, formats=[SOURCE_FORMATS[content_type]]) as image:
            # Opening read only the header: refuse before decoding a single pixel.
            if image.width * image.height > max_pixels:
                raise NoThumbnail(f"{image.width}x{image.height} is more than {max_pixels} pixels")
            # JPEG decodes straight at a fraction of its size: less work and memory.
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))
            transparent = _has_alpha(image)
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                # Palette and other modes resize with the crudest filter only.
                image = image.convert("RGBA" if transparent else "RGB")
            # Shrink first (in place; the box is square, so orientation does not change it).
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            # Photos are often stored sideways with an EXIF orientation; show them upright.
            small = ImageOps.exif_transpose(image).convert("RGBA" if transparent else "RGB")
            if transparent and small.getchannel("A").getextrema()[0] == 255:
                small = small.convert("RGB")  # an alpha channel nothing uses
    except Image.DecompressionBombError as exc:
        raise NoThumbnail(f"too many pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, KeyError) as exc:
        # What Pillow raises for truncated or malformed images.
        raise NoThumbnail(f"undecodable image: {exc}") from None
    out = io.BytesIO()
    if small.mode == "RGBA":
        small.save(out, format="PNG", optimize=True)
        kind = "image/png"
    else:
        small.save(out, format="JPEG", quality=_JPEG_QUALITY, optimize=True)
        kind = "image/jpeg"
    return Thumbnail(out.getvalue(), kind, small.width, small.height)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
