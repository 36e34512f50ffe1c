"""Atomic writes and safe loading."""

import os

import pytest
import torch

from mnist_gan.errors import PipelineError
from mnist_gan.storage import atomic_path, load_torch, save_torch, write_bytes


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    write_bytes(target, b"old")

    def killed_mid_write():
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        killed_mid_write()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_disk_full_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "weights.pt"
    save_torch({"w": torch.zeros(3)}, target)
    before = target.read_bytes()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_bytes", full)
    with pytest.raises(OSError, match="No space"):
        save_torch({"w": torch.ones(3)}, target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["weights.pt"]


def test_save_is_byte_deterministic(tmp_path):
    obj = {"state_dict": {"w": torch.arange(5.0)}, "config": {"model": "dcgan"}}
    save_torch(obj, tmp_path / "a.pt")
    save_torch(obj, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_load_rejects_truncated_and_code(tmp_path):
    save_torch({"w": torch.ones(100)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match="not a valid torch file"):
        load_torch(tmp_path / "cut.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(PipelineError, match="not a valid torch file"):
        load_torch(tmp_path / "evil.pt")
    with pytest.raises(PipelineError, match="does not exist"):
        load_torch(tmp_path / "missing.pt")
