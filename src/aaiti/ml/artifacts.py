"""Model artefacts on disk: atomic writes, SHA-256 verified reads, bounded version history.

A model version is one file ``<root>/<model_id>/v<version:06d>.aaiti``: a stored (uncompressed) zip with
``meta.json`` and the forecaster's blobs (safetensors weights, a joblib file for scikit-learn, nothing for
state-space models whose parameters live in the JSON). The zip is written with fixed timestamps, so the
same model gives the same bytes and the same hash.

Trust rule: scikit-learn blobs are pickles, so *nothing* in a bundle is parsed before its SHA-256 matches
the hash recorded when the server wrote it (:func:`unpack_bundle` takes the expected hash and refuses a
mismatch with :class:`ArtifactIntegrityError`). Uploaded artefacts are never accepted.

Crash safety: data goes to a temporary file in the same directory, is flushed and fsynced, then
``os.replace``d over the final name and the directory is fsynced, so a crash leaves either the old state
or the complete new file, never a partial file under the final name. Leftover temporary files are removed
by the next write or prune of that model.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUNDLE_FORMAT = "aaiti-model/1"
_META = "meta.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_VERSION_FILE = re.compile(r"^v(\d{6,})\.aaiti$")
_TMP_MARK = ".tmp-"


class ArtifactIntegrityError(Exception):
    """The artefact's bytes do not match the SHA-256 recorded when it was written; it is not loaded."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(data: bytes, expected: str) -> None:
    if not hmac.compare_digest(sha256_hex(data), expected.lower()):
        raise ArtifactIntegrityError("artefact SHA-256 does not match the recorded hash; refusing to load it")


def pack_bundle(meta: dict[str, Any], blobs: dict[str, bytes]) -> bytes:
    """Serialise metadata (JSON) and blobs into one deterministic archive."""
    for name in blobs:
        if name == _META or "/" in name or name.startswith("."):
            raise ValueError(f"bad blob name {name!r}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        head = {"format": BUNDLE_FORMAT, **meta}
        zf.writestr(zipfile.ZipInfo(_META, _ZIP_TIME), json.dumps(head, sort_keys=True, allow_nan=False))
        for name in sorted(blobs):
            zf.writestr(zipfile.ZipInfo(name, _ZIP_TIME), blobs[name])
    return buf.getvalue()


def unpack_bundle(data: bytes, expected_sha256: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Verify the hash, then read the archive. Raises :class:`ArtifactIntegrityError` on any mismatch."""
    verify_sha256(data, expected_sha256)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        meta = json.loads(zf.read(_META))
        if meta.get("format") != BUNDLE_FORMAT:
            raise ArtifactIntegrityError(f"unknown artefact format {meta.get('format')!r}")
        blobs = {name: zf.read(name) for name in zf.namelist() if name != _META}
    return meta, blobs


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    model_id: str
    version: int
    path: Path
    sha256: str
    size: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactStore:
    """Versioned artefact files under ``root``; keeps the newest ``keep`` versions of each model."""

    def __init__(self, root: Path | str, keep: int = 5) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.root = Path(root)
        self.keep = keep

    def _dir(self, model_id: str) -> Path:
        if not _MODEL_ID.match(model_id):
            raise ValueError(f"invalid model id {model_id!r}")
        return self.root / model_id

    def path(self, model_id: str, version: int) -> Path:
        if version < 1:
            raise ValueError("versions start at 1")
        return self._dir(model_id) / f"v{version:06d}.aaiti"

    def write(self, model_id: str, version: int, data: bytes) -> StoredArtifact:
        """Write atomically and prune old versions. Returns the location and SHA-256 to record."""
        directory = self._dir(model_id)
        directory.mkdir(parents=True, exist_ok=True)
        final = self.path(model_id, version)
        tmp = directory / f".{final.name}{_TMP_MARK}{secrets.token_hex(8)}"
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(directory)
        stored = StoredArtifact(model_id, version, final, sha256_hex(data), len(data))
        self.prune(model_id)
        return stored

    def read(self, model_id: str, version: int, expected_sha256: str) -> bytes:
        """The file's bytes, only if their SHA-256 matches ``expected_sha256``."""
        data = self.path(model_id, version).read_bytes()
        verify_sha256(data, expected_sha256)
        return data

    def versions(self, model_id: str) -> list[int]:
        directory = self._dir(model_id)
        if not directory.is_dir():
            return []
        found = [_VERSION_FILE.match(p.name) for p in directory.iterdir()]
        return sorted(int(m.group(1)) for m in found if m)

    def prune(self, model_id: str, keep: int | None = None) -> list[int]:
        """Delete all but the newest ``keep`` versions (and stale temporary files). Returns deleted versions."""
        keep = self.keep if keep is None else keep
        directory = self._dir(model_id)
        if not directory.is_dir():
            return []
        for p in directory.iterdir():
            if p.name.startswith(".") and _TMP_MARK in p.name:
                p.unlink(missing_ok=True)
        versions = self.versions(model_id)
        doomed = versions[:-keep] if keep > 0 else versions
        for v in doomed:
            self.path(model_id, v).unlink(missing_ok=True)
        if doomed:
            _fsync_dir(directory)
        return doomed

    def delete_model(self, model_id: str) -> None:
        """Remove every version of a model (when the model is deleted)."""
        directory = self._dir(model_id)
        if directory.is_dir():
            shutil.rmtree(directory)
            _fsync_dir(self.root)
