"""App bundles: a .tar.gz of at most 10 MB whose members all stay inside the bundle's folder.

A bundle is read once, as a stream: each member's header is checked as it arrives, and the
bundle is refused as soon as what it declares passes a limit, before the rest is decompressed.
A 2 MB gzip may claim gigabytes; nothing here reads further than the limits allow.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from django.core.exceptions import ValidationError

MAX_BUNDLE_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
MAX_MEMBERS = 10_000
# Extended headers (long or non-ASCII names) are read into memory and parsed before their
# member is seen: they may take two blocks a member, and 1 MB more in all.
MAX_HEADER_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
_BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class Bundle:
    size: int
    sha256: str
    files: int


class _Compressed:
    """The bundle as sent: counted against 10 MB and hashed as it is read."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self.size = 0
        self.head = self._take(stream.read(2))
        self._pending = self.head

    def _take(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > MAX_BUNDLE_BYTES:
            raise ValidationError("The bundle is larger than 10 MB.")
        self._digest.update(data)
        return data

    def read(self, size: int = -1) -> bytes:
        size = _CHUNK if size is None or size < 0 else size
        pending, self._pending = self._pending[:size], self._pending[size:]
        return pending + self._take(self._stream.read(size - len(pending)))

    def read_rest(self) -> None:
        """Read what follows the archive, for the size and digest only."""
        while self.read(_CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _Tar:
    """The decompressed tar, read no further than its members' headers account for."""

    def __init__(self, unzipped: IO[bytes]) -> None:
        self._unzipped = unzipped
        self._read = 0
        # tarfile reads a record ahead of what it parses.
        self._allowed = tarfile.RECORDSIZE + MAX_HEADER_BYTES + 3 * _BLOCK

    def allow(self, member: tarfile.TarInfo) -> None:
        """Let the stream go on through `member`'s content and the next member's headers."""
        self._allowed += -(-member.size // _BLOCK) * _BLOCK + 3 * _BLOCK

    def read(self, size: int = -1) -> bytes:
        data = self._unzipped.read(_CHUNK if size is None or size < 0 else size)
        self._read += len(data)
        if self._read > self._allowed:
            raise ValidationError(
                "The bundle's extended headers (long names and the like) are larger than a "
                "bundle may hold."
            )
        return data


def _check_member(member: tarfile.TarInfo) -> None:
    path = PurePosixPath(member.name)
    # Nothing may land outside the folder the bundle is unpacked into.
    if path.is_absolute() or ".." in path.parts:
        raise ValidationError(f"“{member.name}” would be unpacked outside the bundle's folder.")
    if member.issym() or member.islnk() or member.isdev() or member.isfifo():
        raise ValidationError(
            f"“{member.name}” is a link or a device; bundles hold files and folders only."
        )
    if not (member.isfile() or member.isdir()):
        raise ValidationError(
            f"“{member.name}” is neither a file nor a folder; bundles hold files and folders only."
        )


def check_bundle(stream: IO[bytes]) -> Bundle:
    """Return the facts of the bundle `stream` holds (read from its current position, once),
    or raise ValidationError saying what is wrong with it."""
    compressed = _Compressed(stream)
    if compressed.head != b"\x1f\x8b":
        raise ValidationError("The bundle is not a gzip file; send a .tar.gz.")
    members = files = unpacked = 0
    try:
        with gzip.GzipFile(fileobj=compressed, mode="rb") as unzipped:
            tar_stream = _Tar(unzipped)
            with tarfile.open(fileobj=tar_stream, mode="r|") as tar:
                for member in tar:
                    members += 1
                    if members > MAX_MEMBERS:
                        raise ValidationError(
                            f"The bundle holds more than {MAX_MEMBERS:,} files and folders."
                        )
                    _check_member(member)
                    unpacked += member.size
                    # Refused on the header's word, before its content is decompressed.
                    if unpacked > MAX_UNPACKED_BYTES:
                        raise ValidationError("The bundle unpacks to more than 100 MB.")
                    if member.isfile():
                        files += 1
                    tar_stream.allow(member)
        compressed.read_rest()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ValidationError(f"The bundle is not a readable .tar.gz ({error}).") from None
    if files == 0:
        raise ValidationError("The bundle holds no file.")
    return Bundle(size=compressed.size, sha256=compressed.hexdigest(), files=files)
