"""Uploaded photos: checked, downscaled, re-encoded without metadata, stored under uploads/."""

import io
import secrets
import uuid
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from portal.errors import ServiceError


def process_photo(upload) -> bytes | None:
    """Downscaled JPEG bytes without metadata (EXIF, GPS, XMP, comments), or None when no file
    was chosen."""
    if upload is None or not getattr(upload, "filename", ""):
        return None
    raw = upload.read()
    if not raw:
        return None
    side = current_app.config["PHOTO_MAX_SIDE"]
    try:
        with Image.open(io.BytesIO(raw)) as img:
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
