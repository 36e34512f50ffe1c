"""Trainer guarantees: bitwise CPU determinism, kill-and-resume gives the same bytes, divergence stops cleanly."""

import signal
from dataclasses import replace

import pytest
import torch

from mnist_gan.gan.families import FAMILIES
from mnist_gan.gan.losses import OBJECTIVES
from mnist_gan.gan.trainer import Hooks
from mnist_gan.settings.params import updated
from mnist_gan.storage import load_torch
from stages import train
from tests.conftest import DEFAULTS, RESUME_EPOCHS, cli, run, seeds_gan, train_cmd

runner = cli()


def run_train(data, out, *extra):
    done = run(train_cmd(data, out, *extra), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_runs_give_identical_weights(tmp_path, tiny_data):
    for name in ("a", "b"):
        result = runner.invoke(
            train.app,
            [
                str(tiny_data),
                str(tmp_path / name),
                "--results",
                str(tmp_path / name / "r"),
                "--checkpoint",
                str(tmp_path / name / "c.pt"),
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--threads",
                "2",
            ],
        )
        assert result.exit_code == 0, result.output
    for file in ("generator.pt", "discriminator.pt"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


@pytest.mark.slow
def test_sigkill_after_an_epoch_then_rerun_gives_the_same_bytes(tmp_path, resume_data, reference_run):
    reference = reference_run

    killed = tmp_path / "killed"
    run(
        train_cmd(resume_data, killed, "--epochs", str(RESUME_EPOCHS)),
        check=False,
        signal=signal.SIGKILL,
        when=(killed / "checkpoint.pt").exists,
        poll=0.02,
    )
    state = load_torch(killed / "checkpoint.pt")
    assert state["epoch"] < RESUME_EPOCHS, "the run finished before it could be killed; the test proves nothing"

    out = run_train(resume_data, killed, "--epochs", str(RESUME_EPOCHS))
    assert f"resuming from {killed / 'checkpoint.pt'}: {state['epoch']} epoch(s)" in out
    for file in ("generator.pt", "discriminator.pt"):
        assert (killed / file).read_bytes() == (reference / file).read_bytes(), file
    # the curves were trimmed to the checkpoint and continued, not duplicated
    steps = [
        line.split("\t")[0] for line in (killed / "results/plots/metrics/train/loss_d.tsv").read_text().splitlines()[1:]
    ]
    assert steps == [
        line.split("\t")[0]
        for line in (reference / "results/plots/metrics/train/loss_d.tsv").read_text().splitlines()[1:]
    ]


class Recorder(Hooks):
    """Hooks that remember what `fit` told them; `stop_at` raises at that window (an interrupted run),
    `poison_at` turns a weight of G to NaN there (as an overflow would)."""

    def __init__(self, stop_at=None, poison_at=None, trainer=None, folder=None):
        self.calls, self.stop_at, self.poison_at, self.trainer, self.folder = [], stop_at, poison_at, trainer, folder
        self.files_seen = []

    def start(self, start):
        self.calls.append(("start", start.epoch, start.step, start.total))

    def window(self, step, means):
        self.calls.append(("window", step))
        if step == self.stop_at:
            raise KeyboardInterrupt
        if step == self.poison_at:
            with torch.no_grad():
                self.trainer.g.main[0].weight[0, 0, 0, 0] = float("nan")

    def epoch(self, end):
        self.calls.append(("epoch", end.epoch, end.step, end.fid is not None, tuple(end.grid.shape), end.nrow))
        if self.folder is not None:
            self.files_seen.append(sorted(p.name for p in self.folder.iterdir()))

    def end(self):
        self.calls.append(("end",))


def small_trainer(tiny_data, **changes):
    """The committed settings (conditional DCGAN, hinge, EMA) in fp32 on 256 images: 8 steps of 32 per epoch."""
    from mnist_gan.data.mnist import load_processed
    from mnist_gan.gan.build import build_trainer

    train = replace(DEFAULTS.train, batch_size=32, log_every=4, ema_bn_batches=2, precision="fp32", **changes)
    return build_trainer(DEFAULTS.gan, train, 28, load_processed(tiny_data / "train.pt"), torch.device("cpu"))


def files_in(folder):
    from mnist_gan.gan.trainer import RunFiles

    folder.mkdir(parents=True, exist_ok=True)
    return RunFiles(folder, folder / "checkpoint.pt", {"lr": 0.0002})


def test_fit_saves_every_epoch_and_tells_its_hooks(tiny_data, tmp_path):
    """Two epochs: the hooks hear the start, every window, each epoch (the probe's FID, a grid of a row per digit)
    and the end; each epoch's files are written after its hook, generator.pt with the settings it was given."""
    from mnist_gan.data.mnist import load_processed
    from mnist_gan.evaluation.classifier import MnistClassifier
    from mnist_gan.evaluation.probe import QualityProbe

    test = load_processed(tiny_data / "test.pt")["images"]
    probe = QualityProbe(MnistClassifier().eval(), test, 64, seed=0)  # untrained features: a real FID all the same
    hooks = Recorder(folder=tmp_path)
    small_trainer(tiny_data, epochs=2).fit(files_in(tmp_path), probe=probe, hooks=hooks)
    grid = (80, 1, 28, 28)  # 8 noise vectors x 10 digits
    assert hooks.calls == [
        ("start", 0, 0, 16),
        ("window", 4),
        ("window", 8),
        ("epoch", 1, 8, True, grid, 8),
        ("window", 12),
        ("window", 16),
        ("epoch", 2, 16, True, grid, 8),
        ("end",),
    ]
    assert hooks.files_seen == [[], ["checkpoint.pt", "discriminator.pt", "generator.pt"]]
    generator = load_torch(tmp_path / "generator.pt")
    assert generator["ema"] and generator["params"] == {"lr": 0.0002} and len(generator["params_digest"]) == 16
    assert load_torch(tmp_path / "checkpoint.pt")["step"] == 16


def test_fit_interrupted_then_rerun_resumes_and_ends_with_the_same_bytes(tiny_data, tmp_path):
    """The in-process twin of the SIGKILL test: stopped in epoch 2, a new trainer resumes after epoch 1 and ends
    with the bytes of an uninterrupted run."""
    small_trainer(tiny_data, epochs=2).fit(files_in(tmp_path / "whole"))
    with pytest.raises(KeyboardInterrupt):
        small_trainer(tiny_data, epochs=2).fit(files_in(tmp_path / "cut"), hooks=Recorder(stop_at=12))
    hooks = Recorder()
    small_trainer(tiny_data, epochs=2).fit(files_in(tmp_path / "cut"), hooks=hooks)
    assert hooks.calls[0] == ("start", 1, 8, 16)  # resumed after epoch 1: 8 steps to go
    assert [c[1] for c in hooks.calls if c[0] == "epoch"] == [2]
    for file in ("generator.pt", "discriminator.pt"):
        assert (tmp_path / "cut" / file).read_bytes() == (tmp_path / "whole" / file).read_bytes(), file


def test_fit_starts_over_when_the_settings_differ(tiny_data, tmp_path):
    small_trainer(tiny_data, epochs=1).fit(files_in(tmp_path))
    hooks = Recorder()
    small_trainer(tiny_data, epochs=2, lr=0.0003).fit(files_in(tmp_path), hooks=hooks)
    assert hooks.calls[0] == ("start", 0, 0, 16)  # another lr: epoch 1's checkpoint is not this run's


def test_the_run_fingerprint_covers_every_module_of_the_package(tmp_path):
    """A checkpoint is resumed only by the same code: an edit to any module, one in a subpackage included,
    gives another fingerprint (so a stale checkpoint is never resumed)."""
    import shutil

    from mnist_gan.gan.checkpoints import PACKAGE, fingerprint

    copy = shutil.copytree(PACKAGE, tmp_path / "mnist_gan", ignore=shutil.ignore_patterns("__pycache__"))
    before = fingerprint({"lr": 0.0002}, "data", copy)
    assert fingerprint({"lr": 0.0002}, "data", copy) == before
    for module in ("storage.py", "gan/layers.py", "outputs/page.py"):
        with open(copy / module, "a") as f:
            f.write("\n# an edit\n")
        after = fingerprint({"lr": 0.0002}, "data", copy)
        assert after != before, module
        before = after
    assert fingerprint({"lr": 0.0003}, "data", copy) != before


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_checkpoint(tiny_data, tmp_path):
    """A weight turned NaN after step 12 (epoch 2) makes every later loss NaN: `fit` stops at the next check,
    naming the first bad step; its hooks are closed, and the checkpoint of epoch 1 stays."""
    from mnist_gan.gan.trainer import Diverged

    trainer = small_trainer(tiny_data, epochs=3)
    hooks = Recorder(poison_at=12, trainer=trainer)
    with pytest.raises(Diverged, match=r"^loss became NaN or infinite at epoch 2, step 13; kept the checkpoint"):
        trainer.fit(files_in(tmp_path), hooks=hooks)
    assert hooks.calls[-1] == ("end",)
    assert load_torch(tmp_path / "checkpoint.pt")["epoch"] == 1


def test_ema_follows_the_ramp_and_bn_recalibration_matches_the_weights():
    from mnist_gan.gan.ema import EMA, recalibrate_bn
    from mnist_gan.gan.models import build_gan

    torch.manual_seed(0)
    generator, _ = build_gan(seeds_gan(num_classes=10), "dcgan")
    ema = EMA(generator, decay=0.999)
    start = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(1.0)
    ema.update(generator, step=0)  # ramp: beta = min(0.999, 1/10) -> moves 90% of the way
    for p0, p in zip(start, ema.model.parameters(), strict=True):
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


CONDITIONING = {
    "unconditional": {"conditional": False, "clusters": 0},
    "digits": {"conditional": True},
    "clusters": {"conditional": False, "clusters": 4},
    "clusters, AC-GAN": {"conditional": False, "clusters": 4, "ac_weight": 1.0},  # D's head: the cluster ids
}
CASES = [  # every objective x conditioning on dcgan, every other family x conditioning; the default's in the fast tier
    pytest.param(family, loss, c, marks=() if (family, loss) == ("dcgan", "hinge") else pytest.mark.slow)
    for family, loss in [("dcgan", loss) for loss in OBJECTIVES] + [(f, "hinge") for f in FAMILIES if f != "dcgan"]
    for c in CONDITIONING
]


@pytest.mark.parametrize(("family", "loss", "conditioning"), CASES)
def test_every_family_objective_and_conditioning_trains_and_round_trips(
    family, loss, conditioning, tiny_data, tmp_path
):
    """Built from params as the train stage builds it (`build.build_trainer`): a few real Trainer steps with
    finite stats that move G, the EMA generator sampling, and generator.pt rebuilding it exactly."""
    import torch.nn.functional as F

    from mnist_gan.data.mnist import load_processed
    from mnist_gan.gan.build import build_trainer
    from mnist_gan.gan.models import weights_file
    from mnist_gan.gan.sampling import generate, load_generator
    from mnist_gan.storage import save_torch

    size = FAMILIES[family].image_size or 28
    changes = {"batch_size": 16, "log_every": 2, "ema_bn_batches": 2, "d_steps": 1, "precision": "fp32"}
    changes["normalize.image_size"] = size
    p = updated(DEFAULTS, model=family, loss=loss, **changes, **CONDITIONING[conditioning])
    data = load_processed(tiny_data / "train.pt")
    if size != 28:
        images = F.interpolate(data["images"].float(), size=(size, size), mode="bilinear")
        data = {**data, "images": images.round().clamp(0, 255).byte()}
    trainer = build_trainer(p.gan, p.train, size, data, torch.device("cpu"))
    assert (trainer.labels is None) == (conditioning == "unconditional")
    g0 = [q.detach().clone() for q in trainer.g.parameters()]
    means = trainer.run_epoch(1, 0, max_steps=2)
    assert all(torch.isfinite(torch.tensor(v)) for v in means.values()), means
    assert any(not torch.equal(a, b) for a, b in zip(g0, trainer.g.parameters(), strict=True))
    best = trainer.sampling_generator()
    assert best is trainer.ema.model and not best.training
    save_torch(weights_file(best), tmp_path / "generator.pt")
    loaded = load_generator(tmp_path / "generator.pt")
    for (name, a), b in zip(best.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # weights and BN statistics exactly
    # same maths; the trained copy runs channels-last kernels, the loaded one contiguous: equal up to rounding
    torch.testing.assert_close(generate(loaded, 6, seed=1), generate(best, 6, seed=1), atol=1e-5, rtol=0)
    assert generate(loaded, 6, seed=1).shape == (6, 1, size, size)


def test_ema_rampup_caps_the_half_life_at_a_share_of_the_images_seen():
    from mnist_gan.gan.ema import EMA

    ramped, tf_rule = EMA(torch.nn.Linear(2, 2), 0.999, rampup=0.05), EMA(torch.nn.Linear(2, 2), 0.999)
    assert ramped.beta(19) == pytest.approx(0.5)  # 20 steps seen: half-life 0.05 x 20 = 1 step
    assert ramped.beta(199) == pytest.approx(0.5**0.1)  # 200 steps: half-life 10 steps
    assert ramped.beta(10**6) == 0.999 and tf_rule.beta(10**6) == 0.999  # both end at the decay
    assert tf_rule.beta(0) == pytest.approx(0.1)
    betas = [ramped.beta(t) for t in range(0, 5000, 50)]
    assert betas == sorted(betas)  # the average only ever lengthens
