"""A cache of the checked organisation, keyed by the bytes of every configuration file and of
the engine's code.

Parsing and checking a 2,000-person configuration takes about half a second; every command
and every process start pays it. The checked `Organisation` is pickled into one file per
configuration directory, headed by a SHA-256 over the directory's path, each file's name and
bytes, the engine's source and the Python version. A file whose key differs, or that cannot be
read or unpickled, is ignored (and replaced): a change to any file, or to the code, is never
served from the cache.

The cache lives in the user's cache directory (KPIBOT_CACHE_DIR, see config/settings.py), which
only they may write: unpickling runs code, so the directory must be as private as the code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kpi_engine.organisation import Organisation

_MAGIC = b"kpibot-organisation-v1\n"
_KEY_SIZE = hashlib.sha256().digest_size


@cache
def _code_digest() -> bytes:
    """A digest of the engine's source: what the pickled objects are and how they were checked."""
    digest = hashlib.sha256(sys.version.encode())
    package = Path(__file__).parent
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode() + b"\0")
        digest.update(source.read_bytes())
    return digest.digest()


def cache_key(config_dir: Path, files: list[Path]) -> bytes:
    """The key of the organisation checked from `files` in `config_dir` by this code."""
    digest = hashlib.sha256(_MAGIC + _code_digest())
    digest.update(str(config_dir.resolve()).encode() + b"\0")
    for file in files:
        data = file.read_bytes()
        digest.update(f"{file.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.digest()


def cache_file(cache_dir: Path, config_dir: Path) -> Path:
    """The one cache file of `config_dir` (a new key replaces the old entry)."""
    name = hashlib.sha256(str(config_dir.resolve()).encode()).hexdigest()[:24]
    return cache_dir / f"organisation-{name}.pickle"


def read_cached(file: Path, key: bytes) -> Organisation | None:
    """The organisation cached in `file` under `key`; None when absent, stale or unreadable."""
    from kpi_engine.organisation import Organisation

    try:
        data = file.read_bytes()
    except OSError:
        return None
    header = _MAGIC + key
    if not data.startswith(header):
        return None
    try:
        found = pickle.loads(data[len(header) :])
    except Exception:  # a truncated or corrupt file, or one written by other code: ignored
        return None
    return found if isinstance(found, Organisation) else None


def write_cached(file: Path, key: bytes, organisation: Organisation) -> None:
    """Store `organisation` under `key`, atomically; a cache that cannot be written is skipped."""
    try:
        payload = pickle.dumps(organisation, protocol=pickle.HIGHEST_PROTOCOL)
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=".organisation-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(_MAGIC + key + payload)
            os.replace(temporary, file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return
