"""Pack a folder as the gzip tar an app version is published from, in memory.

The server accepts files and folders only, every member inside the bundle's folder, at most
10,000 of them, 10 MB compressed and 100 MB unpacked. The same limits are checked here first, so
a wrong folder fails before anything is uploaded (and before a home folder is read into memory).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Buffer
from dataclasses import dataclass
from pathlib import Path

from keyportal_cli.errors import FAILURE, CliError
from keyportal_cli.output import size

MAX_BUNDLE_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
MAX_MEMBERS = 10_000
SKIPPED = {".git"}


@dataclass(frozen=True)
class Packed:
    data: bytes
    files: int
    unpacked: int


class _TooLarge(Exception):
    pass


class _CappedBuffer(io.BytesIO):
    """A BytesIO that stops the packing as soon as the bundle passes the limit."""

    def write(self, data: Buffer) -> int:
        written = super().write(data)
        if self.tell() > MAX_BUNDLE_BYTES:
            raise _TooLarge()
        return written


def _entries(root: Path) -> list[tuple[Path, str, Path]]:
    """Return (path, name in the bundle, path to read) for every folder and file under `root`.

    A link to a file inside `root` is packed as a copy of that file (the server refuses links);
    any other link is refused with a message naming it.
    """
    entries: list[tuple[Path, str, Path]] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED)
        here = Path(folder)
        for name in [*subfolders, *sorted(n for n in names if n not in SKIPPED)]:
            entry = here / name
            arcname = entry.relative_to(root).as_posix()
            source = entry
            if entry.is_symlink():
                target = entry.resolve()
                if not target.is_relative_to(root):
                    raise CliError(
                        f"{arcname} is a link to {target}, outside {root}; bundles cannot hold it.",
                        FAILURE,
                    )
                if not target.is_file():
                    raise CliError(
                        f"{arcname} is a link to a folder or to nothing; bundles hold files and "
                        "folders only: replace it or remove it.",
                        FAILURE,
                    )
                source = target
            elif not (entry.is_file() or entry.is_dir()):
                raise CliError(
                    f"{arcname} is neither a file nor a folder; bundles hold only those.",
                    FAILURE,
                )
            entries.append((entry, arcname, source))
    return entries


def pack(directory: str | os.PathLike[str]) -> Packed:
    """Return `directory` packed as a .tar.gz, member names relative to it, `.git` left out."""
    root = Path(directory).resolve()
    entries = _entries(root)
    if len(entries) > MAX_MEMBERS:
        raise CliError(
            f"{root} holds more than {MAX_MEMBERS:,} files and folders, the most a bundle may "
            "hold; nothing was uploaded.",
            FAILURE,
        )
    files = [source for _entry, _name, source in entries if source.is_file()]
    if not files:
        raise CliError(f"{root} holds no file to publish.", FAILURE)
    unpacked = sum(source.stat().st_size for source in files)
    if unpacked > MAX_UNPACKED_BYTES:
        raise CliError(
            f"{root} holds {size(unpacked)} of files; a bundle may unpack to at most 100 MB.",
            FAILURE,
        )
    buffer = _CappedBuffer()
    try:
        # dereference: a file reached twice (a link and its target) is stored twice, never as a
        # hard link, which the server refuses.
        with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as tar:
            for _entry, arcname, source in entries:
                info = tar.gettarinfo(str(source), arcname=arcname)
                # Who owns the files on this machine is nobody else's business.
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isfile():
                    with source.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    except _TooLarge:
        raise CliError(
            f"{root} packs to more than 10 MB, the largest bundle keyportal accepts; nothing was "
            "uploaded.",
            FAILURE,
        ) from None
    except OSError as exc:
        raise CliError(f"Cannot read {exc.filename or root}: {exc.strerror}.", FAILURE) from None
    return Packed(data=buffer.getvalue(), files=len(files), unpacked=unpacked)
