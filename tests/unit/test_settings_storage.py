"""The storage section of the settings: JACAMENO_STORAGE_URL chooses local files or S3, the
other values are checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from jacameno.settings import Settings, SettingsError


def settings(**values: str) -> Settings:
    return Settings.from_env({f"JACAMENO_{k.upper()}": v for k, v in values.items()})


def test_the_default_is_files_in_the_data_folder() -> None:
    storage = settings(data_dir="/srv/j").storage
    assert storage.kind == "file"
    assert storage.folder == Path("/srv/j/blobs")
    assert not storage.redirect


def test_an_s3_url_names_the_bucket_and_the_prefix() -> None:
    storage = settings(
        storage_url="s3://studio-audio/prod/assets/",
        s3_endpoint_url="http://127.0.0.1:9000",
        s3_region="eu-west-1",
        storage_redirect="true",
        max_upload_bytes="1048576",
    ).storage
    assert (storage.kind, storage.bucket, storage.prefix) == ("s3", "studio-audio", "prod/assets")
    assert storage.s3_endpoint_url == "http://127.0.0.1:9000"
    assert storage.s3_region == "eu-west-1"
    assert storage.redirect
    assert storage.max_upload_bytes == 1048576


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("storage_url", "ftp://x/y", "file:// or s3://"),
        ("storage_url", "file://", "needs a folder"),
        ("storage_url", "s3:///prefix", "needs a bucket"),
        ("s3_endpoint_url", "localhost:9000", "http:// or https://"),
        ("storage_redirect", "yes", "true or false"),
        ("max_upload_bytes", "10", ">= 1024"),
        ("s3_part_bytes", "1024", ">= 5242880"),
    ],
)
def test_bad_storage_settings_are_errors_at_start(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**{name: value})


def test_production_needs_a_storage_url() -> None:
    with pytest.raises(SettingsError, match="JACAMENO_STORAGE_URL"):
        settings(
            env="production",
            database_url="postgresql://db/j",
            redis_url="redis://r",
            jwt_secret="x" * 40,
        )
