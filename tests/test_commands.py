"""Every command the README and docs/ show runs. The fast tier: each documented command is one this file knows, its
`--help` (or, for a make target, its dry run) answers; the measurement commands also run once on tiny settings
(`make bench`'s crash at 1b250b9, a trainer built another way than the train stage's, would fail here)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys

import pytest
from markdown_it import MarkdownIt

from mnist_gan.storage import save_torch
from tests.conftest import ROOT, cli, run

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# How each documented command is invoked for its --help: a typer app, an argparse main, the console script, make.
MODULES = {
    "benchmarks.centring": "app",
    "benchmarks.confusions": "app",
    "benchmarks.gpu_check": "app",
    "benchmarks.serve_load": "main",
    "benchmarks.sweep_scaling": "app",
    "benchmarks.timings": "app",
    "benchmarks.train_speed": "app",
    "benchmarks.two_sample": "app",
    "study.pareto": "app",
    "stages.classifier": "app",
    "stages.evaluate": "app",
    "stages.export": "app",
    "stages.fetch": "app",
    "stages.normalize": "app",
    "stages.report": "app",
    "stages.sample": "app",
    "stages.train": "app",
    "stages.two_sample": "app",
}
CONSOLE = ("sample", "serve", "compare", "sweep", "release", "promote")
MAKE = ("run", "test", "test-fast", "lint", "fmt", "docs", "bench", "gpu-check", "venv", "lock", "clean", "browser")


def code_spans(page) -> list[str]:
    """The text of every inline code span and fenced code block of a Markdown page, one line each."""
    out = []
    for token in MarkdownIt("commonmark").enable("table").parse(page.read_text()):
        if token.type == "fence":
            out += token.content.splitlines()
        for child in token.children or []:
            if child.type == "code_inline":
                out.append(child.content)
    return out


def documented() -> set[str]:
    """`make TARGET`, `python -m MODULE` and `mnist-gan COMMAND` as the pages show them, at the start of a code
    line (after a prompt, `&&` or an environment assignment)."""
    found = set()
    for page in PAGES:
        for line in code_spans(page):
            for part in re.split(r"&&|;|\|", line.split("#")[0]):
                words = [w for w in part.split() if not re.match(r"^[A-Z_]+=", w)]
                if words[:1] == ["make"] and len(words) > 1:
                    found.add(f"make {words[1]}")
                elif words[:2] == ["python", "-m"] and len(words) > 2 and re.fullmatch(r"[\w.]+", words[2]):
                    found.add(f"python -m {words[2]}")
                elif words[:1] == ["mnist-gan"] and len(words) > 1:
                    found.add(f"mnist-gan {words[1]}")
    return found


def test_every_documented_command_is_one_this_file_checks():
    known = {f"make {t}" for t in MAKE} | {f"python -m {m}" for m in MODULES} | {f"mnist-gan {c}" for c in CONSOLE}
    unknown = documented() - known - {"python -m venv", "python -m pip", "python -m dvc"}
    assert not unknown, f"documented but never run by a test: {sorted(unknown)}"
    assert {"make run", "make test", "python -m benchmarks.train_speed", "mnist-gan release"} <= documented()


@pytest.mark.parametrize("module", MODULES)
def test_each_documented_module_answers_help(module, monkeypatch, capsys):
    entry = getattr(importlib.import_module(module), MODULES[module])
    if MODULES[module] == "app":
        done = cli().invoke(entry, ["--help"])
        assert done.exit_code == 0 and "Usage" in done.output, done.output
    else:
        monkeypatch.setattr(sys, "argv", [module, "--help"])
        with pytest.raises(SystemExit) as code:
            entry()
        assert code.value.code == 0 and "usage" in capsys.readouterr().out


@pytest.mark.parametrize("command", CONSOLE)
def test_each_console_command_answers_help(command, capsys):
    from mnist_gan.cli import main

    with pytest.raises(SystemExit) as code:
        main([command, "--help"])
    assert code.value.code == 0 and f"mnist-gan {command}" in capsys.readouterr().out


@pytest.mark.parametrize("target", MAKE)
def test_each_make_target_has_a_recipe(target):
    done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_study_table_and_plot_render_from_the_committed_rows(tmp_path):
    from study import pareto

    done = cli().invoke(pareto.app, ["table"])
    assert done.exit_code == 0 and "| row |" in done.output
    done = cli().invoke(pareto.app, ["plot", str(ROOT / "docs" / "pareto.jsonl"), str(tmp_path / "p.png")])
    assert done.exit_code == 0 and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG", done.output


def test_the_plot_draws_a_setting_once_at_the_mean_of_its_seeds():
    from study.plot import front, settings
    from study.rows import QUALITY, SPEED, quiet_times, read

    rows = [r for r in read(QUALITY) if r["name"] in ("pg32e18", "pg32e18_s7", "pg32e18_s3", "pg32e28", "pg32e28_s7")]
    points = settings(rows, quiet_times(SPEED), "two_sample_accuracy", conditional=True)
    by_name = {s.name: s for s in points}
    assert sorted(by_name) == ["pg32e18", "pg32e28"] and len(by_name["pg32e18"].values) == 3
    assert by_name["pg32e18"].default and not by_name["pg32e28"].default and by_name["pg32e28"].budget
    assert [s.name for s in front(points)] == ["pg32e18", "pg32e28"]  # 28 epochs: lower on the mean, dearer


def test_timings_record_appends_a_row_with_the_cpu_class(tmp_path):
    from benchmarks import timings

    table = tmp_path / "t.jsonl"
    done = cli().invoke(timings.app, ["record", "noop", "--table", str(table), "--", "true"])
    assert done.exit_code == 0, done.output
    row = json.loads(table.read_text())
    assert row["name"] == "noop" and row["cores"] >= 1 and "capability" in row


@pytest.mark.slow
def test_the_benchmarks_run_on_tiny_settings(tmp_path, raw_mnist, tiny_data):
    """`make bench` (train_speed) and the two-sample benchmark, each once, in a folder laid out like a
    reproduced project (data/processed, data/raw, a generator)."""
    (tmp_path / "data" / "raw").mkdir(parents=True)
    shutil.copytree(tiny_data, tmp_path / "data" / "processed")
    (tmp_path / "data" / "raw" / "MNIST").symlink_to(raw_mnist / "MNIST")
    params = tmp_path / "params.yaml"  # the train stage's 20 steps for the peak RSS, the two-sample test's samples
    params.write_text((ROOT / "params.yaml").read_text().replace("n_samples: 10000", "n_samples: 200"))
    tiny = ["--steps", "2", "--repeats", "1", "--models", "dcgan", "--batches", "", "--eval-sizes", ""]
    done = run([sys.executable, "-m", "benchmarks.train_speed", *tiny, "--processes", ""], tmp_path)
    assert "this trainer, fp32" in done.stdout and "train stage peak RSS" in done.stdout, done.output

    from mnist_gan.gan.models import build_gan, weights_file
    from tests.test_models import config

    generator, _ = build_gan(config("dcgan"))
    save_torch(weights_file(generator.eval()), tmp_path / "g.pt")
    done = run([sys.executable, "-m", "benchmarks.two_sample", "g.pt", "--max-epochs", "1", "--width", "4"], tmp_path)
    assert re.search(r"max_epochs 1, .*: floor 0\.\d+ \+- 0\.0\d+ \(best epoch 1, .*samples [01]\.\d+", done.stdout), (
        done.output
    )


def test_the_centring_benchmark_reads_where_the_ink_is():
    import torch

    from benchmarks.centring import centres

    x = torch.full((2, 1, 28, 28), -1.0)
    x[0, 0, 5, 9] = 1.0
    x[1, 0, 20, 3] = x[1, 0, 22, 3] = 1.0  # two equal dots: their midpoint
    assert centres(x).tolist() == [[5.0, 9.0], [21.0, 3.0]]


def test_the_confusions_benchmark_counts_each_misreading_by_asked_and_read():
    import torch

    from benchmarks.confusions import line, misreadings

    labels = torch.tensor([7, 7, 7, 4, 4, 1])
    probs = torch.nn.functional.one_hot(torch.tensor([9, 7, 9, 9, 4, 1]), 10).float()
    assert misreadings(probs, labels) == {(7, 9): 2, (4, 9): 1}
    assert line("g", probs, labels) == "g: 3 of 6 misread (50.00% read as asked); most: 7 -> 9 2, 4 -> 9 1"


def test_recentring_moves_samples_to_mnists_centre_and_leaves_real_digits_alone(raw_mnist):
    import torch

    from benchmarks.centring import centres, recentred
    from mnist_gan.data.mnist import load_split

    dots = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    dots[0, 0, 5, 9] = 255
    dots[1, 0, 20:23, 3:6] = 200
    moved = recentred(dots)
    assert centres(moved.float() / 127.5 - 1).tolist() == [[14.0, 14.0], [14.0, 14.0]]
    assert moved.sum((1, 2, 3)).tolist() == dots.sum((1, 2, 3)).tolist()  # shifted, nothing lost
    real, _ = load_split(raw_mnist, train=False)
    assert torch.equal(recentred(real[:500]), real[:500])
