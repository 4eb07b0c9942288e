import pytest

from domain.events import assets


def test_an_uploaded_asset_reads_back_as_written() -> None:
    asset = assets.UploadedAsset(
        asset_id="a1",
        project_id="p1",
        user_id="u1",
        sha256="ab" * 32,
        size=44,
        content_type="audio/wav",
        format="WAV",
        sample_rate=48000,
        channels=2,
        frames=48000,
        duration=1.0,
        name="Intro é.wav",
    )
    event = assets.asset_uploaded(asset)
    assert event.type == assets.ASSET_UPLOADED
    assert event.metadata == {"user_id": "u1"}
    assert assets.read_asset_uploaded(event.data) == asset


def test_a_deleted_asset_reads_back() -> None:
    event = assets.asset_deleted("a1", user_id="u1")
    assert assets.read_asset_deleted(event.data) == "a1"


@pytest.mark.parametrize("data", [b'{"asset_id": 1}', b"[]"])
def test_other_deleted_payloads_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"not an asset\.deleted"):
        assets.read_asset_deleted(data)


def test_an_uploaded_payload_missing_fields_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not an asset\.uploaded"):
        assets.read_asset_uploaded(b'{"size": 3}')
