"""Files: atomic writes, checksums, and safe loading of torch files (never unpickles code)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch

from mnist_gan.errors import PipelineError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A crash, a kill or a full disk therefore never leaves a half-written `path`: the old file (if any)
    stays as it was, and the temporary file is removed (after SIGKILL it stays until the next write of `path`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-write (one writer per file)
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the bytes reach the disk before the rename makes them visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def save_torch(obj: object, path: str | os.PathLike) -> None:
    """torch.save, atomically. Saved through a buffer: a file name would become the archive's inner
    folder name, so the bytes depend only on `obj` and equal weights give byte-identical files."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def load_torch(path: str | os.PathLike, what: str = "file") -> dict:
    """torch.load with weights_only=True: tensors and plain containers only, never arbitrary code."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{what} {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        problem = f"{what} {path} is not a valid torch file (truncated, corrupt or unsafe): {reason}"
        raise PipelineError(problem) from None
    if not isinstance(obj, dict):
        raise PipelineError(f"{what} {path} holds a {type(obj).__name__}, expected a dict")
    return obj


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
