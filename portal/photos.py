"""Uploaded photos: checked, downscaled, re-encoded without metadata, stored under uploads/."""

import io
import secrets
import uuid
from pathlib import Path

from flask import abort, current_app, send_from_directory
from PIL import Image, ImageOps, UnidentifiedImageError

from portal.errors import ServiceError

#: What a phone's camera or gallery gives; anything else is refused by name.
PHOTO_FORMATS = {"JPEG": "JPG", "PNG": "PNG", "WEBP": "WEBP", "MPO": "JPG"}


def process_photo(upload, min_side: int = 0) -> bytes | None:
    """Downscaled JPEG bytes without metadata (EXIF, GPS, XMP, comments), or None when no file
    was chosen. Refused with a message that says what to do: not a JPG/PNG/WebP picture, more
    than PHOTO_MAX_BYTES or PHOTO_MAX_PIXELS, or a shorter side under ``min_side`` pixels (a
    printed photo needs enough of them)."""
    if upload is None or not getattr(upload, "filename", ""):
        return None
    cfg = current_app.config
    raw = upload.read(cfg["PHOTO_MAX_BYTES"] + 1)
    if not raw:
        return None
    if len(raw) > cfg["PHOTO_MAX_BYTES"]:
        raise ServiceError(f"照片太大（超过 {cfg['PHOTO_MAX_BYTES'] // 1024 // 1024} MB），"
                           "请换一张或压缩后再传。", "photo")
    side = cfg["PHOTO_MAX_SIDE"]
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.format not in PHOTO_FORMATS:
                raise ServiceError("只能上传 JPG、PNG 或 WebP 格式的照片。", "photo")
            width, height = img.size
            if width * height > cfg["PHOTO_MAX_PIXELS"]:
                raise ServiceError("照片像素太多，请换一张。", "photo")
            if min(width, height) < min_side:
                raise ServiceError(f"照片太小（{width}×{height}），印出来会模糊；"
                                   f"请换一张短边不少于 {min_side} 像素的照片。", "photo")
            img.draft(None, (side, side))  # JPEG: decode at 1/2…1/8 scale when that suffices
            img.load()
            img = ImageOps.exif_transpose(img)
            img = img.convert("RGB")
            img.thumbnail((side, side))
            # Pillow writes a JPEG comment found in .info back out; keep nothing but pixels
            img.info.clear()
            out = io.BytesIO()
            img.save(out, "JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as e:
        raise ServiceError("照片无法识别，请选择 JPG 或 PNG 图片。", "photo") from e


def photo_dir(kind: str) -> Path:
    """The folder of one kind of photo ("duty", "requests")."""
    base = current_app.config["UPLOAD_DIR"] or Path(current_app.instance_path) / "uploads"
    path = Path(base) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_photo_name() -> str:
    return f"{uuid.uuid4().hex}.jpg"


def store_photo(kind: str, name: str, data: bytes) -> None:
    """Write the file atomically (a reader never sees half a photo). Call after the database
    row is flushed, so a refused row leaves no file behind."""
    tmp = photo_dir(kind) / f".{name}.{secrets.token_hex(4)}"
    tmp.write_bytes(data)
    tmp.rename(photo_dir(kind) / name)


def read_photo(kind: str, name: str | None) -> bytes | None:
    """A stored photo's bytes (to print it), or None when there is none."""
    if not name:
        return None
    path = photo_dir(kind) / name
    return path.read_bytes() if path.exists() else None


def send_photo(kind: str, name: str | None, max_age: int = 86400):
    """A stored photo as the response (404 when there is none), cached by the browser only."""
    if not name:
        abort(404)
    response = send_from_directory(photo_dir(kind), name, mimetype="image/jpeg")
    response.headers["Cache-Control"] = f"private, max-age={max_age}"
    return response
