"""App bundles: a .tar.gz of at most 10 MB whose members all stay inside the bundle's folder."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError

MAX_BUNDLE_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str
    files: int


def check_bundle(data: bytes) -> Bundle:
    """Return the bundle's facts, or raise ValidationError saying what is wrong with it."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise ValidationError("The bundle is larger than 10 MB.")
    if not data.startswith(b"\x1f\x8b"):
        raise ValidationError("The bundle is not a gzip file; send a .tar.gz.")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValidationError(f"The bundle is not a readable .tar.gz ({error}).") from None
    files = 0
    unpacked = 0
    for member in members:
        path = PurePosixPath(member.name)
        # Nothing may land outside the folder the bundle is unpacked into.
        if path.is_absolute() or ".." in path.parts:
            raise ValidationError(f"“{member.name}” would be unpacked outside the bundle's folder.")
        if member.issym() or member.islnk() or member.isdev() or member.isfifo():
            raise ValidationError(
                f"“{member.name}” is a link or a device; bundles hold files and folders only."
            )
        if member.isfile():
            files += 1
            unpacked += member.size
    if files == 0:
        raise ValidationError("The bundle holds no file.")
    if unpacked > MAX_UNPACKED_BYTES:
        raise ValidationError("The bundle unpacks to more than 100 MB.")
    return Bundle(data=data, sha256=hashlib.sha256(data).hexdigest(), files=files)
