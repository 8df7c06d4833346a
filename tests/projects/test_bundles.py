"""App bundles as `POST /api/v1/apps/{id}/versions` meets them: read as a stream, refused early."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client

from accounts.access import Actor
from apikeys.models import KeyKind
from apikeys.services import api_key_create
from projects.models import ApiKeyAccess, AppVersion
from tests.factories import AppFactory

pytestmark = pytest.mark.django_db

GIB = 1024**3


class CountedFile(io.BytesIO):
    """An in-memory upload that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


class CountingUploadHandler(FileUploadHandler):
    """Keep each uploaded file in memory as a CountedFile, remembered in `uploads`."""

    uploads: list[CountedFile] = []

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.buffer.write(raw_data)

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        counted = CountedFile(self.buffer.getvalue())
        self.uploads.append(counted)
        return InMemoryUploadedFile(
            counted, self.field_name, self.file_name, self.content_type, file_size, self.charset
        )


@pytest.fixture
def counted_uploads(settings) -> list[CountedFile]:
    """Return the list each upload of the test is added to, counting what is read of it."""
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.CountingUploadHandler"]
    CountingUploadHandler.uploads = []
    return CountingUploadHandler.uploads


@pytest.fixture
def app(org):
    """Return an app of the organization that API keys may edit."""
    return AppFactory(
        project__team__organization=org.organization,
        slug="storefront",
        api_key_access=ApiKeyAccess.CAN_EDIT,
    )


@pytest.fixture
def token(org) -> str:
    """Return an organization key that may publish."""
    return api_key_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=["apps:publish"],
    )[1]


def publish(app, token: str, data: bytes):
    upload = io.BytesIO(data)
    upload.name = "bundle.tar.gz"
    return Client().post(
        f"/api/v1/apps/{app.pk}/versions",
        {"bundle": upload},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def tar_gz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """Return a .tar.gz of `members`, each a header and its content."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    return buffer.getvalue()


def member(name: str, content: bytes = b"hi", kind: bytes = tarfile.REGTYPE, **fields):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(content) if kind == tarfile.REGTYPE else 0
    for field, value in fields.items():
        setattr(info, field, value)
    return info, content


def header_then_noise(header: tarfile.TarInfo, noise_bytes: int = 4 * 1024 * 1024) -> bytes:
    """Return a gzip of a lone tar header followed by incompressible bytes, and nothing else."""
    raw = header.tobuf(format=tarfile.GNU_FORMAT) + os.urandom(noise_bytes)
    return gzip.compress(raw, compresslevel=1)


def assert_refused(response, status: int, message: str) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert message in error["message"]
    assert not AppVersion.objects.exists()


def test_valid_bundle_is_published_with_its_facts(app, token):
    """A bundle of files and folders becomes the next version: size, digest and file count."""
    data = tar_gz(member("css", kind=tarfile.DIRTYPE), member("css/app.css"), member("index.html"))
    response = publish(app, token, data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["version"], body["files"], body["size"]) == (1, 2, len(data))
    version = AppVersion.objects.get(app=app)
    with version.bundle.open("rb") as stored:
        assert stored.read() == data


def test_member_declaring_gigabytes_is_refused_before_the_rest_is_read(app, token, counted_uploads):
    """A tar header claiming 2 GiB is refused from its header, without reading what follows."""
    header = tarfile.TarInfo("huge.bin")
    header.size = 2 * GIB
    data = header_then_noise(header)
    assert_refused(publish(app, token, data), 422, "unpacks to more than 100 MB")
    [upload] = counted_uploads
    assert upload.bytes_read < 512 * 1024 < len(data)


def test_long_name_declaring_gigabytes_is_refused_before_the_rest_is_read(
    app, token, counted_uploads
):
    """A GNU long-name header claiming 2 GiB is not read into memory: refused within 1 MB."""
    header = tarfile.TarInfo("././@LongLink")
    header.type = tarfile.GNUTYPE_LONGNAME
    header.size = 2 * GIB
    data = header_then_noise(header)
    assert_refused(publish(app, token, data), 422, "extended headers")
    [upload] = counted_uploads
    assert upload.bytes_read < 2 * 1024 * 1024 < len(data)


def test_too_many_members_are_refused(app, token):
    """A bundle of more than 10,000 members is refused, however small they are."""
    data = tar_gz(*(member(f"f{n}", b"") for n in range(10_001)))
    assert_refused(publish(app, token, data), 422, "more than 10,000 files and folders")


def test_bundle_over_10_mb_is_413(app, token):
    """An upload larger than 10 MB is refused with 413 before it is looked at."""
    response = publish(app, token, b"\x1f\x8b" + os.urandom(10 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "The bundle is larger than 10 MB."


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (member("../escape.txt"), "outside the bundle's folder"),
        (member("/etc/passwd"), "outside the bundle's folder"),
        (member("link", b"", tarfile.SYMTYPE, linkname="index.html"), "is a link or a device"),
        (member("hard", b"", tarfile.LNKTYPE, linkname="index.html"), "is a link or a device"),
        (member("fifo", b"", tarfile.FIFOTYPE), "is a link or a device"),
    ],
)
def test_member_outside_the_folder_or_not_a_file_is_refused(app, token, bad, message):
    """Members that would land outside the folder, links and devices are refused (422)."""
    assert_refused(publish(app, token, tar_gz(member("index.html"), bad)), 422, message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 a zip", "not a gzip file"),
        (gzip.compress(b"not a tar at all"), "not a readable .tar.gz"),
        (gzip.compress(b"x" * 4096)[:200], "not a readable .tar.gz"),
        (tar_gz(member("empty", kind=tarfile.DIRTYPE)), "holds no file"),
    ],
)
def test_unreadable_or_empty_bundle_is_refused(app, token, data, message):
    """Anything but a .tar.gz holding a file is refused with a message saying why (422)."""
    assert_refused(publish(app, token, data), 422, message)
