"""Faults through the real stage commands: one line on stderr, a non-zero exit, no traceback, nothing lost."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from mnist_gan.gan.models import Discriminator, build_gan, weights_file
from mnist_gan.storage import file_digest, save_torch
from tests.conftest import PY, RESUME_EPOCHS, ROOT, run, seeds_gan, train_cmd

pytestmark = pytest.mark.slow  # real stage processes (~4 s of imports each), kills and resumes
GOOD_PARAMS = (ROOT / "params.yaml").read_text()


def one_line_error(done: subprocess.CompletedProcess, code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    return {p.name: file_digest(p) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """A generator and the sample stage's outputs, to check that a failing stage leaves them as they were."""
    out = tmp_path_factory.mktemp("sampled")
    generator, _ = build_gan(seeds_gan())
    save_torch(weights_file(generator), out / "generator.pt")
    done = run(
        PY + ["stages.sample", "--weights", out / "generator.pt", "--out", out / "s" / "grid.png", "--n", "8"],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def edit(text: str, pattern: str, replacement: str) -> str:
    new = re.sub(pattern, replacement, text, count=1, flags=re.M)
    assert new != text, pattern
    return new


# What a hand edit or a bad `-S` can do -> what the message must name, through a real stage process: one case per
# kind of fault. Every key's own rule (ranges, nan, null, choices) is checked in-process by tests/test_params.py,
# through the same validator.
BAD_PARAMS = {
    "wrong type": (r"^lr: .*$", "lr: fast", "lr = 'fast'"),
    "out of range": (r"^batch_size: .*$", "batch_size: 0", "batch_size = 0"),
    "missing key": (r"^beta2: .*\n", "", "missing key beta2"),
    "unknown key": (r"^seed: ", "learning_rate: 0.1\nseed: ", "unknown key learning_rate"),
    "unknown model": (r"^model: .*$", "model: stylegan", "model = 'stylegan'"),  # the registry, read when checked
    "section value": (r"^  n_images: .*$", "  n_images: many", "sample.n_images = 'many'"),
    "not yaml": (r"^seed: .*$", "seed: [42", "not valid YAML"),
}


@pytest.mark.parametrize("fault", BAD_PARAMS)
def test_bad_params_stop_the_stage_before_it_touches_anything(tmp_path, sampled, fault):
    pattern, replacement, named = BAD_PARAMS[fault]
    params = tmp_path / "params.yaml"
    params.write_text(edit(GOOD_PARAMS, pattern, replacement))
    before = digest(sampled / "s")
    done = run(
        PY + ["stages.sample", "--weights", sampled / "generator.pt", "--out", sampled / "s" / "grid.png"],
        params=params,
        check=False,
    )
    line = one_line_error(done, 2)
    assert line.startswith("error: ") and named in line, line
    assert digest(sampled / "s") == before


def test_float_spellings_of_yaml_and_dvc_are_accepted(tmp_path, sampled):
    """YAML 1.2 spellings (what `dvc exp run -S` writes) in one params file read by a real stage."""
    text = GOOD_PARAMS
    for key, spelling in (("lr", "2e-4"), ("lr_d_ratio", "2.0E0"), ("leaky_slope", ".2e0"), ("beta2", "0.999")):
        text = edit(text, rf"^{key}: .*$", f"{key}: {spelling}")
    params = tmp_path / "params.yaml"
    params.write_text(text)
    done = run(PY + ["stages.sample", "--help"], params=params, check=False)
    assert done.returncode == 0, done.stderr


def test_weights_truncated_other_architecture_or_code(tmp_path, sampled):
    good = (sampled / "generator.pt").read_bytes()
    cases = {}
    cases["truncated"] = tmp_path / "truncated.pt"
    cases["truncated"].write_bytes(good[: len(good) // 3])
    cases["discriminator"] = tmp_path / "discriminator.pt"
    save_torch(
        {**weights_file(Discriminator(seeds_gan())), "config": weights_file(Discriminator(seeds_gan()))["config"]},
        cases["discriminator"],
    )
    cases["mlp config, dcgan weights"] = tmp_path / "mixed.pt"
    mixed = torch.load(sampled / "generator.pt", weights_only=True)
    mixed["config"]["model"] = "mlp"
    save_torch(mixed, cases["mlp config, dcgan weights"])
    marker = tmp_path / "pwned"

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cases["pickle with code"] = tmp_path / "evil.pt"
    torch.save({"state_dict": RunsCode(), "config": {}}, cases["pickle with code"])
    cases["missing"] = tmp_path / "nothing-here.pt"
    for name, path in cases.items():
        done = run(PY + ["stages.sample", "--weights", path, "--out", tmp_path / name / "grid.png"], check=False)
        line = one_line_error(done, 1)
        assert str(path) in line, (name, line)
        assert not (tmp_path / name).exists(), name
    assert not marker.exists()


def test_a_full_disk_fails_in_one_line_and_keeps_the_previous_output(tmp_path, sampled):
    """The OS refuses the write (RLIMIT_FSIZE: EFBIG, as ENOSPC would): one line, old files intact."""
    import resource

    before = digest(sampled / "s")

    def small_files_only():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get the error from write(), not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = run(
        PY + ["stages.sample", "--weights", sampled / "generator.pt", "--out", sampled / "s" / "grid.png", "--n", "64"],
        check=False,
        preexec_fn=small_files_only,
    )
    line = one_line_error(done, 1)
    assert line.startswith("error: cannot read or write") and "File too large" in line, line
    assert digest(sampled / "s") == before  # neither the grid nor the tensor was half-written


def test_every_torch_load_is_weights_only():
    sources = [*ROOT.glob("src/**/*.py"), *ROOT.glob("stages/*.py"), *ROOT.glob("benchmarks/*.py")]
    for path in sources:
        for call in re.findall(r"torch\.load\([^)]*\)", path.read_text()):
            assert "weights_only=True" in call, f"{path}: {call}"


def test_corrupt_raw_file_is_named_by_normalize(tmp_path, raw_mnist):
    root = tmp_path / "data"
    shutil.copytree(raw_mnist / "MNIST", root / "MNIST")
    target = root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    data = bytearray(target.read_bytes())
    data[4321] ^= 0xFF
    target.write_bytes(bytes(data))
    line = one_line_error(run(PY + ["stages.normalize", root, tmp_path / "out"], check=False), 1)
    assert "train-labels-idx1-ubyte is corrupt" in line and "a25bea736e30d166cdddb491f175f624" in line
    assert not (tmp_path / "out").exists()


def _train(data: Path, out: Path) -> list[str]:
    return train_cmd(data, out, "--epochs", str(RESUME_EPOCHS))


def test_sigkill_mid_checkpoint_write_then_resume_gives_the_same_bytes(tmp_path, resume_data, reference_run):
    """Kill the instant a checkpoint's temporary file appears (the write is under way), then rerun.

    The kill races the write; an attempt whose kill lands outside it is started over in a fresh folder, so the
    resume below always starts from a run killed mid-write."""
    for attempt in range(5):
        out = tmp_path / f"run{attempt}"
        run(
            _train(resume_data, out),
            check=False,
            signal=signal.SIGKILL,
            when=lambda out=out: list(out.glob(".checkpoint.pt.*.tmp")),
            poll=0.0005,
        )
        if list(out.glob(".checkpoint.pt.*.tmp")):
            break
    else:
        pytest.fail("in 5 attempts the kill never landed while a checkpoint was being written")
    run(_train(resume_data, out))
    for name in ("generator.pt", "discriminator.pt"):
        assert (out / name).read_bytes() == (reference_run / name).read_bytes(), name
    assert not list(out.glob(".*.tmp")), "stale temporary files were not cleaned up"


def logged_step(out: Path) -> int:
    """The last step the train stage has logged a point for (dvclive's loss_d curve), 0 before the first."""
    try:
        rows = (out / "results/plots/metrics/train/loss_d.tsv").read_text().splitlines()[1:]
        return int(rows[-1].split("\t")[0]) if rows else 0
    except (OSError, ValueError):  # not written yet, or a row half-written
        return 0


def test_sigint_stops_cleanly_and_the_checkpoint_resumes(tmp_path, resume_data, reference_run):
    out = tmp_path / "run"
    steps = 2048 // 64  # per epoch of resume_data at batch 64
    # a shell without job control starts background jobs with SIGINT ignored (and Python keeps it so):
    # give the child the default disposition a terminal's Ctrl-C meets
    proc = run(
        _train(resume_data, out),
        check=False,
        signal=signal.SIGINT,
        when=lambda: logged_step(out) > steps,  # a point logged inside epoch 2: mid-epoch, whatever the CPU's speed
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    stderr = proc.stderr
    assert proc.returncode == 130, f"(no point logged inside epoch 2 before the end? log_every < {steps}) {stderr}"
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted (Ctrl-C)"), stderr
    assert "Traceback" not in stderr
    done = run(_train(resume_data, out), check=False)
    assert "resuming from" in done.stdout, done.stdout + done.stderr
    assert (out / "generator.pt").read_bytes() == (reference_run / "generator.pt").read_bytes()
