"""Self-conditioning: k-means clusters stand in for digit labels, and the model stays unconditional for its user."""

from dataclasses import replace

import pytest
import torch

from mnist_gan.gan.build import gan_config
from mnist_gan.gan.clusters import deskew, kmeans, self_condition_labels
from mnist_gan.gan.ema import recalibrate_bn
from mnist_gan.gan.models import asks_digits, build_gan, random_labels, weights_file
from mnist_gan.gan.sampling import generate, interpolation
from mnist_gan.settings.params import load_params
from mnist_gan.storage import save_torch
from stages import sample
from tests.conftest import ROOT, cli, run, seeds_gan, set_params, train_cmd

PRIOR = [0.5, 0.3, 0.15, 0.05]


def test_kmeans_recovers_well_separated_blobs():
    rng = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    truth = torch.arange(4).repeat_interleave(50)
    x = centres[truth] + torch.randn(200, 2, generator=rng) * 0.5
    found = kmeans(x.double(), 4, seed=1)
    # the same partition up to renaming: each true blob maps to one cluster, and back
    assert all(len(found[truth == b].unique()) == 1 for b in range(4))
    assert len(found.unique()) == 4


def moments(images):
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = images.sum((1, 2))
    cy, cx = (images * ys).sum((1, 2)) / mass, (images * xs).sum((1, 2)) / mass
    skew = (images * (ys - cy[:, None, None]) * (xs - cx[:, None, None])).sum((1, 2)) / mass
    return cy, cx, skew


def test_deskew_stands_a_slanted_stroke_upright_and_centres_it():
    slanted = torch.zeros(1, 28, 28)
    for row in range(4, 24):  # a stroke drifting right as it goes down, off-centre
        slanted[0, row, 6 + row // 2] = 1.0
    cy, cx, skew = moments(slanted)
    assert skew.item() > 5
    cy, cx, skew = moments(deskew(slanted))
    assert abs(skew.item()) < 0.5 and abs(cx.item() - 13.5) < 0.5 and abs(cy.item() - 13.5) < 0.5
    upright = torch.zeros(1, 28, 28)
    upright[0, 4:24, 13:15] = 1.0  # already upright and centred: (almost) unchanged
    assert (deskew(upright) - upright).abs().max() < 0.51


def test_self_condition_labels_are_sorted_by_size_and_deterministic(tiny_data):
    images = torch.load(tiny_data / "train.pt", weights_only=True)["images"]
    labels, prior = self_condition_labels(images, 8, seed=3)
    again, prior_again = self_condition_labels(images, 8, seed=3)
    assert torch.equal(labels, again) and prior == prior_again
    assert labels.shape == (len(images),) and 0 <= labels.min() and labels.max() < 8
    assert prior == sorted(prior, reverse=True) and abs(sum(prior) - 1) < 1e-12
    counts = torch.bincount(labels, minlength=8).double() / len(labels)
    assert torch.allclose(counts, torch.tensor(prior, dtype=torch.double))


def self_conditioned(tmp_path=None):
    torch.manual_seed(0)
    generator, _ = build_gan(seeds_gan(num_classes=len(PRIOR), class_prior=PRIOR), "dcgan")
    with torch.no_grad():
        for layer in generator.modules():  # give clusters an effect (conditional BN starts as plain BN)
            if isinstance(layer, torch.nn.Embedding):
                layer.weight.normal_(0, 0.5)
    generator.eval()
    if tmp_path is not None:
        save_torch(weights_file(generator), tmp_path / "self.pt")
    return generator


def test_random_labels_follow_the_cluster_prior():
    cfg = seeds_gan(num_classes=len(PRIOR), class_prior=PRIOR)
    drawn = random_labels(cfg, 20000, torch.Generator().manual_seed(0))
    shares = torch.bincount(drawn, minlength=4).double() / len(drawn)
    assert torch.allclose(shares, torch.tensor(PRIOR, dtype=torch.double), atol=0.01)
    assert not asks_digits(cfg) and asks_digits(seeds_gan(num_classes=10)) and not asks_digits(seeds_gan())
    assert random_labels(seeds_gan(), 5, torch.Generator()) is None


def test_a_self_conditioned_generator_samples_unconditionally_and_reproducibly():
    generator = self_conditioned()
    a, b = generate(generator, 64, seed=5), generate(generator, 64, seed=5)
    assert torch.equal(a, b) and not torch.equal(a, generate(generator, 64, seed=6))
    # with no labels given, clusters are drawn (not all cluster 0): the images vary with the drawn cluster
    z_only = generator(
        torch.randn(64, *generator.latent_shape, generator=torch.Generator().manual_seed(5)),
        torch.zeros(64, dtype=torch.long),
    )
    assert not torch.equal(a, z_only)
    assert interpolation(generator, seed=0).shape == (10, 1, 28, 28)
    recalibrate_bn(generator, 2, 16, seed=0)  # draws clusters by their shares, not digits


def test_sample_refuses_a_digit_from_a_self_conditioned_generator(tmp_path):
    self_conditioned(tmp_path)
    out = tmp_path / "x.png"
    result = cli().invoke(sample.app, ["--weights", str(tmp_path / "self.pt"), "--digit", "7", "--out", str(out)])
    assert result.exit_code == 2 and "self-conditioned on 4 clusters" in result.output
    assert not out.exists()
    result = cli().invoke(sample.app, ["--weights", str(tmp_path / "self.pt"), "--n", "8", "--out", str(out)])
    assert result.exit_code == 0 and out.is_file()
    assert torch.load(tmp_path / "x.pt", weights_only=True)["labels"] is None  # no digits to show


def test_clusters_follow_conditional_in_the_config():
    p = load_params(ROOT / "params.yaml")
    assert p.train.clusters > 0, "conditional=false alone must give the self-conditioned model"
    unconditional = gan_config(p.gan, replace(p.train, conditional=False), 28, PRIOR)
    assert unconditional.num_classes == 4 and unconditional.class_prior == PRIOR
    conditional = gan_config(p.gan, replace(p.train, conditional=True), 28, PRIOR)
    assert conditional.num_classes == 10 and conditional.class_prior is None
    assert gan_config(p.gan, replace(p.train, conditional=False, clusters=0), 28).num_classes == 0


@pytest.mark.slow
def test_training_reads_no_digit_label(tmp_path, tiny_data):
    """The train stage with conditional=false and clusters: shuffling the digit labels changes no byte."""
    import shutil

    outs = []
    for name, shuffle in (("true", False), ("shuffled", True)):
        data = tmp_path / f"data-{name}"
        shutil.copytree(tiny_data, data)
        train = torch.load(data / "train.pt", weights_only=True)
        if shuffle:
            train["labels"] = train["labels"][torch.randperm(len(train["labels"]))]
            save_torch(train, data / "train.pt")
        project = tmp_path / f"params-{name}"
        project.mkdir()
        shutil.copy(ROOT / "params.yaml", project / "params.yaml")
        set_params(project, conditional=False, clusters=5)
        out = tmp_path / f"run-{name}"
        done = run(
            train_cmd(data, out, "--max-steps", "3", "--epochs", "1"), params=project / "params.yaml", check=False
        )
        assert done.returncode == 0, done.stderr
        assert "self-conditioned on 5 clusters" in done.stdout
        outs.append((out / "generator.pt").read_bytes())
    assert outs[0] == outs[1]
    weights = torch.load(tmp_path / "run-true" / "generator.pt", weights_only=True)
    assert weights["config"]["num_classes"] == 5 and len(weights["config"]["class_prior"]) == 5
