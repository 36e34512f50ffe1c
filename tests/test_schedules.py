"""The learning-rate schedules: their shapes, the trainer following them step by step, and a resume that lands on
the same bytes as an uninterrupted run."""

from dataclasses import replace

import pytest
import torch

from mnist_gan.gan.models import build_gan
from mnist_gan.gan.schedules import lr_factor
from mnist_gan.gan.step import make_optimizers
from tests.conftest import DEFAULTS
from tests.test_training import Recorder, files_in, small_trainer


def test_shapes():
    total = 100
    assert [lr_factor("constant", 0, s, total) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert lr_factor("linear", 0, 0, total) == 1.0 and lr_factor("linear", 0, 100, total) == 0.0
    assert lr_factor("linear", 0, 25, total) == pytest.approx(0.75)
    assert lr_factor("cosine", 0, 50, total) == pytest.approx(0.5)
    assert lr_factor("cosine", 0, 100, total) == pytest.approx(0.0, abs=1e-12)
    warm = [lr_factor("cosine", 10, s, total) for s in range(10)]  # linear warm-up to 1 over 10 steps
    assert warm == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lr_factor("cosine", 10, 10, total) == 1.0  # then the schedule over the remaining 90 steps
    assert lr_factor("cosine", 10, 55, total) == pytest.approx(0.5)


def test_the_trainer_sets_both_rates_from_the_step(tiny_data, tmp_path):
    trainer = small_trainer(tiny_data, epochs=2, lr_schedule="linear", lr_warmup=0.5)
    trainer.fit(files_in(tmp_path))
    last = 2 * trainer.steps_per_epoch - 1
    factor = lr_factor("linear", trainer.warmup_steps, last, trainer.total_steps)
    assert trainer.warmup_steps == 4 and 0 < factor < 0.1
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(trainer.cfg.lr * factor)
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(trainer.cfg.lr * trainer.cfg.lr_d_ratio * factor)


def test_a_resumed_run_follows_the_schedule_to_the_same_bytes(tiny_data, tmp_path):
    changes = {"epochs": 2, "lr_schedule": "cosine", "lr_warmup": 0.5, "ema_kimg": 1.0}
    small_trainer(tiny_data, **changes).fit(files_in(tmp_path / "whole"))
    with pytest.raises(KeyboardInterrupt):
        small_trainer(tiny_data, **changes).fit(files_in(tmp_path / "cut"), hooks=Recorder(stop_at=12))
    small_trainer(tiny_data, **changes).fit(files_in(tmp_path / "cut"))
    for file in ("generator.pt", "discriminator.pt"):
        assert (tmp_path / "cut" / file).read_bytes() == (tmp_path / "whole" / file).read_bytes(), file


def test_ema_kimg_sets_the_decay_from_the_images_per_step(tiny_data):
    trainer = small_trainer(tiny_data, ema_kimg=1.0)  # 32 images per step, half-life 1,000 images
    assert trainer.ema.decay == pytest.approx(0.5 ** (32 / 1000))
    assert small_trainer(tiny_data, ema_decay=0.0, ema_kimg=None).ema is None
    assert torch.tensor(small_trainer(tiny_data).ema.decay) == torch.tensor(0.995)


def test_d_learns_at_lr_times_its_ratio_so_one_lr_moves_both():
    g, d = build_gan(replace(DEFAULTS.gan, model="mlp", g_hidden=[8], d_hidden=[8]), "pytorch")
    opt_g, opt_d = make_optimizers(g, d, replace(DEFAULTS.train, lr=3e-4, lr_d_ratio=2.5))
    assert opt_g.param_groups[0]["lr"] == 3e-4 and opt_d.param_groups[0]["lr"] == pytest.approx(7.5e-4)
