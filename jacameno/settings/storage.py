"""Where audio assets are stored and how they are served: the `storage` section of the settings,
read with them (jacameno.settings) from `JACAMENO_STORAGE_*` and `JACAMENO_S3_*` variables.

`JACAMENO_STORAGE_URL` chooses the backend: `file:///absolute/folder` or `file://relative`
(files on this machine; the default is the data folder's `blobs/`), or `s3://bucket/prefix`
(the prefix may be empty). S3 credentials are botocore's standard ones (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, a profile, an instance role): never read here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from jacameno.settings.errors import SettingsError

MIB = 1024 * 1024
_KINDS = ("file", "s3")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    url: str
    s3_endpoint_url: str | None = None  # an S3-compatible store; None: AWS
    s3_region: str | None = None
    # GET /api/assets/{id} on S3: redirect (307) to a presigned URL valid for `presign_seconds`,
    # instead of streaming the bytes through this server.
    redirect: bool = False
    presign_seconds: int = 300
    max_upload_bytes: int = 512 * MIB  # one asset's bytes; more: 413
    part_bytes: int = 8 * MIB  # S3 multipart part size (at least 5 MiB)

    @property
    def kind(self) -> Literal["file", "s3"]:
        return "file" if self.url.startswith("file:") else "s3"

    @property
    def folder(self) -> Path:
        """The folder of a `file://` URL."""
        if self.kind != "file":
            raise SettingsError("the storage is not on local files")
        return Path(self.url.removeprefix("file://"))

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        return urlsplit(self.url).path.strip("/")

    @classmethod
    def read(cls, get: Callable[[str], str | None], data_dir: Path) -> StorageConfig:
        """The section `get` (a `JACAMENO_` variable by the rest of its name) gives; the
        default URL is the data folder's `blobs/`. SettingsError for a value that is not one."""
        url = get("STORAGE_URL") or f"file://{data_dir / 'blobs'}"
        scheme = urlsplit(url).scheme
        if scheme not in _KINDS:
            raise SettingsError("JACAMENO_STORAGE_URL must be a file:// or s3://bucket/prefix URL")
        if scheme == "file" and not url.removeprefix("file://"):
            raise SettingsError("JACAMENO_STORAGE_URL: file:// needs a folder")
        if scheme == "s3" and not urlsplit(url).netloc:
            raise SettingsError("JACAMENO_STORAGE_URL: s3:// needs a bucket (s3://bucket/prefix)")
        endpoint = get("S3_ENDPOINT_URL")
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise SettingsError("JACAMENO_S3_ENDPOINT_URL must be an http:// or https:// URL")
        redirect = get("STORAGE_REDIRECT")
        if redirect is not None and redirect not in ("0", "1", "true", "false"):
            raise SettingsError("JACAMENO_STORAGE_REDIRECT must be true or false")
        return cls(
            url=url,
            s3_endpoint_url=endpoint,
            s3_region=get("S3_REGION"),
            redirect=redirect in ("1", "true"),
            presign_seconds=_int(get, "STORAGE_PRESIGN_SECONDS", 300, 10),
            max_upload_bytes=_int(get, "MAX_UPLOAD_BYTES", 512 * MIB, 1024),
            part_bytes=_int(get, "S3_PART_BYTES", 8 * MIB, 5 * MIB),
        )


def _int(get: Callable[[str], str | None], name: str, default: int, minimum: int) -> int:
    text = get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise SettingsError(f"JACAMENO_{name} must be an integer >= {minimum}, not {text!r}")
    return int(text)
