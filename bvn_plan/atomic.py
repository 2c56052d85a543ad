"""Atomic file output: every file is written whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import InputError


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename, so a failed
    write leaves any earlier file untouched and no partial file behind."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
    handle = tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o666 & ~_umask())  # the permissions a plain open() would give
        os.replace(handle.name, path)
    except BaseException as exc:  # also on Ctrl-C: never leave the temp file behind
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        if isinstance(exc, OSError):
            raise InputError(f"could not write {path}: {exc}; nothing was written") from exc
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, document) -> Path:
    """Write ``document`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(document, indent=2))
