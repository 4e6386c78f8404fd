"""Artefacts: atomic versioned files, SHA-256 verified before anything is parsed, last N kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaiti.ml.artifacts import (
    ArtifactIntegrityError,
    ArtifactStore,
    pack_bundle,
    sha256_hex,
    unpack_bundle,
)


def test_write_read_roundtrip(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, keep=3)
    data = pack_bundle({"algorithm": "naive", "x": [1, 2]}, {"blob.bin": b"\x00\x01"})
    stored = store.write("model-1", 1, data)
    assert stored.sha256 == sha256_hex(data)
    assert stored.path.read_bytes() == data
    assert store.read("model-1", 1, stored.sha256) == data
    meta, blobs = unpack_bundle(store.read("model-1", 1, stored.sha256), stored.sha256)
    assert meta["x"] == [1, 2]
    assert blobs == {"blob.bin": b"\x00\x01"}
    assert not [p for p in stored.path.parent.iterdir() if p.name.startswith(".")]


def test_tampered_file_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    data = pack_bundle({"algorithm": "naive"}, {})
    stored = store.write("m", 1, data)
    raw = bytearray(stored.path.read_bytes())
    raw[-5] ^= 0xFF
    stored.path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactIntegrityError):
        store.read("m", 1, stored.sha256)
    # A crafted archive is never opened without the matching hash.
    with pytest.raises(ArtifactIntegrityError):
        unpack_bundle(b"PK\x03\x04 not really a zip", stored.sha256)


def test_keeps_last_n_versions(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, keep=2)
    for v in range(1, 6):
        store.write("m", v, f"version {v}".encode())
    assert store.versions("m") == [4, 5]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["v000004.aaiti", "v000005.aaiti"]
    assert store.prune("m", keep=1) == [4]
    store.delete_model("m")
    assert store.versions("m") == []


def test_stale_temp_files_cleaned_and_ids_checked(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    (tmp_path / "m").mkdir()
    leftover = tmp_path / "m" / ".v000001.aaiti.tmp-deadbeef"
    leftover.write_bytes(b"partial")
    store.write("m", 1, b"complete")
    assert not leftover.exists()
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid model id"):
            store.write(bad, 1, b"x")


def test_bundle_is_deterministic() -> None:
    a = pack_bundle({"k": 1, "z": "y"}, {"b": b"2", "a": b"1"})
    b = pack_bundle({"z": "y", "k": 1}, {"a": b"1", "b": b"2"})
    assert a == b
    with pytest.raises(ValueError, match="bad blob name"):
        pack_bundle({}, {"../x": b""})
