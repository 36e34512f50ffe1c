"""Trainer guarantees: bitwise CPU determinism, kill-and-resume gives the same bytes, divergence stops cleanly."""

import signal

import pytest
import torch
from typer.testing import CliRunner

from mnist_gan.families import FAMILIES
from mnist_gan.losses import OBJECTIVES
from mnist_gan.storage import load_torch
from stages import train
from tests.conftest import DEFAULTS, run, seeds_gan, seeds_train, train_cmd

runner = CliRunner()


def run_train(data, out, *extra):
    done = run(train_cmd(data, out, *extra), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_runs_give_identical_weights(tmp_path, tiny_data):
    for name in ("a", "b"):
        result = runner.invoke(train.app, [str(tiny_data), str(tmp_path / name), "--results",
                                           str(tmp_path / name / "r"), "--checkpoint", str(tmp_path / name / "c.pt"),
                                           "--epochs", "2", "--batch-size", "32", "--threads", "2"])
        assert result.exit_code == 0, result.output
    for file in ("generator.pt", "discriminator.pt"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


@pytest.mark.slow
def test_sigkill_after_an_epoch_then_rerun_gives_the_same_bytes(tmp_path, resume_data, reference_run):
    reference = reference_run

    killed = tmp_path / "killed"
    run(train_cmd(resume_data, killed, "--epochs", "3"), check=False, signal=signal.SIGKILL,
        when=(killed / "checkpoint.pt").exists, poll=0.02)
    state = load_torch(killed / "checkpoint.pt")
    assert state["epoch"] < 3, "the run finished before it could be killed; the test proves nothing"

    out = run_train(resume_data, killed, "--epochs", "3")
    assert f"resuming from {killed / 'checkpoint.pt'}: {state['epoch']} epoch(s)" in out
    for file in ("generator.pt", "discriminator.pt"):
        assert (killed / file).read_bytes() == (reference / file).read_bytes(), file
    # the curves were trimmed to the checkpoint and continued, not duplicated
    steps = [line.split("\t")[0] for line in (killed / "results/plots/metrics/train/loss_d.tsv").read_text().splitlines()[1:]]
    assert steps == [line.split("\t")[0] for line in
                     (reference / "results/plots/metrics/train/loss_d.tsv").read_text().splitlines()[1:]]


@pytest.mark.slow
def test_changed_params_start_over(tmp_path, tiny_data):
    out = tmp_path / "run"
    run_train(tiny_data, out, "--epochs", "1", "--lr", "0.0002")
    assert "resuming" not in run_train(tiny_data, out, "--epochs", "2", "--lr", "0.0003")


def test_nan_loss_stops_naming_epoch_and_step(tiny_data):
    """A NaN weight (as an overflow would leave) makes every loss NaN from the first step: caught at once."""
    from mnist_gan.mnist import load_processed
    from mnist_gan.models import build_gan
    from mnist_gan.parallel import prepare_models
    from mnist_gan.training import Diverged, Trainer

    cfg = seeds_train(batch_size=32, log_every=4)
    generator, discriminator = prepare_models(*build_gan(seeds_gan(), "dcgan"), cfg, torch.device("cpu"))
    trainer = Trainer(generator, discriminator, load_processed(tiny_data / "train.pt")["images"], cfg,
                      torch.device("cpu"))
    trainer.run_epoch(1, 0)  # 8 healthy steps
    with torch.no_grad():
        generator.main[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(Diverged, match=r"^loss became NaN or infinite at epoch 2, step 9; kept the checkpoint"):
        trainer.run_epoch(2, 8)


def test_ema_follows_the_ramp_and_bn_recalibration_matches_the_weights():
    from mnist_gan.models import build_gan
    from mnist_gan.ema import EMA, recalibrate_bn

    torch.manual_seed(0)
    generator, _ = build_gan(seeds_gan(num_classes=10), "dcgan")
    ema = EMA(generator, decay=0.999)
    start = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(1.0)
    ema.update(generator, step=0)  # ramp: beta = min(0.999, 1/10) -> moves 90% of the way
    for p0, p in zip(start, ema.model.parameters()):
        assert torch.allclose(p, p0 + 0.9, atol=1e-5)
    assert all(not p.requires_grad for p in ema.model.parameters())

    # statistics recomputed from noise are the exact mean/var of the first BN's inputs over those batches
    recalibrate_bn(ema.model, batches=4, batch_size=32, seed=3)
    bn = ema.model.main[1].bn
    rng = torch.Generator().manual_seed(3)
    first = []
    for _ in range(4):
        z = torch.randn(32, *ema.model.latent_shape, generator=rng)
        torch.randint(10, (32,), generator=rng)
        first.append(ema.model.main[0](z))
    want = torch.stack([x.mean((0, 2, 3)) for x in first]).mean(0)
    assert torch.allclose(bn.running_mean, want, atol=1e-5)
    assert not ema.model.training and bn.momentum == 0.1  # momentum restored, eval mode


CONDITIONING = {"unconditional": {"conditional": False, "clusters": 0}, "digits": {"conditional": True},
                "clusters": {"conditional": False, "clusters": 4}}
CASES = [  # every objective x conditioning on dcgan, every other family x conditioning; the default's in the fast tier
    pytest.param(family, loss, c, marks=() if (family, loss) == ("dcgan", "hinge") else pytest.mark.slow)
    for family, loss in [("dcgan", loss) for loss in OBJECTIVES] + [(f, "hinge") for f in FAMILIES if f != "dcgan"]
    for c in CONDITIONING
]


@pytest.mark.parametrize("family, loss, conditioning", CASES)
def test_every_family_objective_and_conditioning_trains_and_round_trips(family, loss, conditioning, tiny_data, tmp_path):
    """Built from params as the train stage builds it (config.gan_config / train_config): a few real Trainer
    steps with finite stats that move G, the EMA generator sampling, and generator.pt rebuilding it exactly."""
    import torch.nn.functional as F

    from mnist_gan.clusters import self_condition_labels
    from mnist_gan.mnist import load_processed
    from mnist_gan.models import build_gan, weights_file
    from mnist_gan.parallel import prepare_models
    from mnist_gan.sampling import generate, load_generator
    from mnist_gan.storage import save_torch
    from mnist_gan.training import Trainer, gan_config, train_config

    size = FAMILIES[family].image_size or 28
    p = DEFAULTS.updated(model=family, loss=loss, batch_size=16, log_every=2, ema_bn_batches=2, d_steps=1,
                         **CONDITIONING[conditioning])
    data = load_processed(tiny_data / "train.pt")
    images = data["images"]
    if size != 28:
        images = F.interpolate(images.float(), size=(size, size), mode="bilinear").round().clamp(0, 255).byte()
    labels, prior = data["labels"], None
    if not p.train.conditional and p.train.clusters:
        labels, prior = self_condition_labels(data["images"], p.train.clusters, seed=0)
    cfg = train_config(p.train, "fp32")
    gan = gan_config(p.gan, cfg, size, prior)
    generator, discriminator = prepare_models(*build_gan(gan, "dcgan"), cfg, torch.device("cpu"))
    trainer = Trainer(generator, discriminator, images, cfg, torch.device("cpu"), labels=labels)
    assert (trainer.labels is None) == (conditioning == "unconditional")
    g0 = [q.detach().clone() for q in trainer.g.parameters()]
    means = trainer.run_epoch(1, 0, max_steps=2)
    assert all(torch.isfinite(torch.tensor(v)) for v in means.values()), means
    assert any(not torch.equal(a, b) for a, b in zip(g0, trainer.g.parameters()))
    best = trainer.best_generator()
    assert best is trainer.ema.model and not best.training
    save_torch(weights_file(best), tmp_path / "generator.pt")
    loaded = load_generator(tmp_path / "generator.pt")
    for (name, a), b in zip(best.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name  # weights and BN statistics exactly
    # same maths; the trained copy runs channels-last kernels, the loaded one contiguous: equal up to rounding
    torch.testing.assert_close(generate(loaded, 6, seed=1), generate(best, 6, seed=1), atol=1e-5, rtol=0)
    assert generate(loaded, 6, seed=1).shape == (6, 1, size, size)


def test_ema_rampup_caps_the_half_life_at_a_share_of_the_images_seen():
    from mnist_gan.ema import EMA

    ramped, tf_rule = EMA(torch.nn.Linear(2, 2), 0.999, rampup=0.05), EMA(torch.nn.Linear(2, 2), 0.999)
    assert ramped.beta(19) == pytest.approx(0.5)  # 20 steps seen: half-life 0.05 x 20 = 1 step
    assert ramped.beta(199) == pytest.approx(0.5 ** 0.1)  # 200 steps: half-life 10 steps
    assert ramped.beta(10**6) == 0.999 and tf_rule.beta(10**6) == 0.999  # both end at the decay
    assert tf_rule.beta(0) == pytest.approx(0.1)
    betas = [ramped.beta(t) for t in range(0, 5000, 50)]
    assert betas == sorted(betas)  # the average only ever lengthens
