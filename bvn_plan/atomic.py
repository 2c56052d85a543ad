"""Atomic output: every file, and every output folder, is written whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
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


def write_files_atomic(files: dict) -> list[Path]:
    """Write several files (path -> bytes) so that either all are replaced or none is: every
    file is first written whole to a temp file beside it, and only then are they renamed into
    place, so a failed write (a full disk, a bad folder) leaves every earlier file untouched. The
    renames themselves (in the same folder, so they do not copy data) are not one transaction."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            if not path.parent.is_dir():
                raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
            handle = tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                                 delete=False)
            staged.append((handle.name, path))
            with handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(handle.name, 0o666 & ~_umask())
        for temp, path in staged:
            os.replace(temp, path)
    except BaseException as exc:
        for temp, _ in staged:
            if os.path.exists(temp):
                os.unlink(temp)
        if isinstance(exc, OSError):
            raise InputError(f"could not write {', '.join(str(p) for p in files)}: {exc}; "
                             "none of them was changed") from exc
        raise
    return [path for _, path in staged]


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


def replace_directory(out: Path, fill) -> Path:
    """Build a folder with ``fill(temp_folder)`` in a hidden sibling of ``out`` and move it into
    place; an earlier ``out`` is swapped out and deleted only after the new one is complete. On
    any failure the temporary folder is removed and ``out`` is left as it was."""
    out = Path(out)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {parent}: {exc}") from exc
    for stale in parent.glob(f".{out.name}.new-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=parent))
    try:
        fill(temp)
        os.chmod(temp, 0o777 & ~_umask())
        if out.exists():
            old = parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(temp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return out
