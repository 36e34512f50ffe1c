"""Every architecture, with and without conditioning: builds from params, right shapes and ranges, trains a
step, round-trips its weights; the registry is the one place that knows the family names."""

import copy
from dataclasses import asdict

import pytest
import torch
from torch import nn

from mnist_gan.gan.build import gan_config
from mnist_gan.gan.families import FAMILIES
from mnist_gan.gan.layers import ConditionalBatchNorm2d
from mnist_gan.gan.models import build_gan, has_batch_stats, weights_file
from mnist_gan.gan.sampling import load_generator
from mnist_gan.gan.step import Models, make_optimizers, plan_for, train_step
from mnist_gan.settings.params import ParamsError, check_value, updated
from mnist_gan.settings.recipes import params as recipe_params
from mnist_gan.storage import save_torch
from tests.conftest import seeds_train

# The five seed systems (settings/recipes.yaml), by the family each trains; mlp-small is seed 002's small MLP.
PRESETS = {"dcgan": "000", "mlp": "001", "mlp-small": "002", "conv": "003", "dcgan64": "004"}


def config(name: str, **extra):
    """The GANConfig of a seed's recipe plus `extra` (params keys)."""
    params = updated(recipe_params(PRESETS[name]), **extra)
    return gan_config(params.gan, params.train, params.normalize.image_size)


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("name", PRESETS)
def test_shapes_and_ranges(name, conditional):
    cfg = config(name, conditional=conditional)
    generator, discriminator = build_gan(cfg, "dcgan")
    z = torch.randn(4, *generator.latent_shape)
    y = torch.tensor([0, 3, 7, 9]) if conditional else None
    images = generator(z, y)
    assert images.shape == (4, 1, cfg.image_size, cfg.image_size)
    assert images.min() >= -1 and images.max() <= 1
    logits = discriminator(images, y)
    assert logits.shape == (4,)


@pytest.mark.parametrize("name", PRESETS)
def test_labels_steer_every_conditional_family(name):
    """Same z, other digit -> other image and other D score (once the label parameters are not at their
    neutral init)."""
    torch.manual_seed(0)
    generator, discriminator = build_gan(config(name, conditional=True), "pytorch")
    for m in [*generator.modules(), *discriminator.modules()]:
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight)
    generator.eval()
    z = torch.randn(1, *generator.latent_shape).expand(2, *generator.latent_shape)
    images = generator(z, torch.tensor([1, 7]))
    assert not torch.allclose(images[0], images[1])
    scores = discriminator(images[:1].expand(2, *images.shape[1:]), torch.tensor([1, 7]))
    assert not torch.allclose(scores[0], scores[1])


def test_conditional_pieces():
    generator, discriminator = build_gan(config("dcgan", conditional=True, spectral_norm=True), "dcgan")
    cbn = [m for m in generator.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(cbn) == 3 and all(m.gain.num_embeddings == 10 for m in cbn)
    assert all(torch.all(m.gain.weight == 0) and torch.all(m.bias.weight == 0) for m in cbn)  # starts as plain BN
    assert discriminator.embed.weight.shape == (10, discriminator.head.in_features)  # projection head
    assert not has_batch_stats(discriminator)  # spectral norm: no BatchNorm in D
    assert sum(hasattr(m, "parametrizations") for m in discriminator.modules()) == 5  # 3 convs, head, embedding


def test_spectral_norm_bounds_every_layer():
    _, discriminator = build_gan(config("dcgan", spectral_norm=True), "dcgan")
    discriminator.train()
    for _ in range(30):  # power iterations converge over forward passes
        discriminator(torch.randn(2, 1, 28, 28))
    for m in discriminator.modules():
        if isinstance(m, nn.Linear):
            assert torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_d_batchnorm_follows_the_objective():
    assert has_batch_stats(build_gan(config("dcgan"))[1])  # the seeds' D
    for extra in ({"loss": "wgan-gp"}, {"spectral_norm": True}, {"r1_gamma": 1.0}):
        assert not has_batch_stats(build_gan(config("dcgan", **extra))[1]), extra


def test_the_registry_is_the_only_place_that_names_families():
    """params' choices are the registry's keys, in its order, and no module outside families.py compares a
    value with a family name, however spelled (==, !=, in a tuple, a match case)."""
    from tests.conftest import library_modules, names_compared

    with pytest.raises(ParamsError) as refused:
        check_value("model", "transformer")
    assert str(refused.value).endswith("expected one of " + " | ".join(FAMILIES))
    chains = [
        f"{name}:{hit}"
        for name, path in library_modules().items()
        if name != "mnist_gan.gan.families"
        for hit in names_compared(path.read_text(), set(FAMILIES))
    ]
    assert chains == []


def test_seed_002_sizes():
    generator, discriminator = build_gan(config("mlp-small"))
    g_linear = [m for m in generator.modules() if isinstance(m, nn.Linear)]
    d_linear = [m for m in discriminator.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_linear] == [(64, 256), (256, 784)]
    assert [(m.in_features, m.out_features) for m in d_linear] == [(784, 128), (128, 1)]
    assert all(m.negative_slope == 0.1 for m in generator.modules() if isinstance(m, nn.LeakyReLU))


def test_seed_003_layers():
    generator, discriminator = build_gan(config("conv"))
    convt = [
        (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])
        for m in generator.modules()
        if isinstance(m, nn.ConvTranspose2d)
    ]
    assert convt == [(100, 256, 4, 2, 1), (256, 128, 4, 2, 1), (128, 1, 3, 1, 1)]
    conv = [(m.in_channels, m.out_channels) for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert conv == [(1, 64), (64, 128), (128, 256)]
    assert discriminator.head.in_features == 256 * 3 * 3 and discriminator.head.bias is not None


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    generator, _ = build_gan(config("dcgan64"), init="dcgan")
    conv = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)])
    bn = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(conv.mean()) < 1e-3 and abs(conv.std() - 0.02) < 1e-3
    assert abs(bn.mean() - 1) < 5e-3 and abs(bn.std() - 0.02) < 5e-3
    bn_bias = torch.cat([m.bias for m in generator.modules() if isinstance(m, nn.BatchNorm2d)])
    assert torch.all(bn_bias == 0)


@pytest.mark.parametrize("name", PRESETS)
def test_one_training_step_changes_both_networks(name):
    torch.manual_seed(0)
    cfg = config(name)
    generator, discriminator = build_gan(cfg)
    opt_g, opt_d = make_optimizers(generator, discriminator, seeds_train())
    before_g = [p.detach().clone() for p in generator.parameters()]
    before_d = [p.detach().clone() for p in discriminator.parameters()]
    d_before = copy.deepcopy(discriminator)
    real = torch.rand(8, 1, cfg.image_size, cfg.image_size) * 2 - 1
    z = torch.randn(1, 8, *generator.latent_shape)
    plan = plan_for(seeds_train(), discriminator, torch.device("cpu"))
    stats = train_step(Models(generator, discriminator, opt_g, opt_d), real[None], z, None, plan)
    assert set(stats) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(torch.isfinite(v) for v in stats.values())
    # D(x) is logged as the loss reads it (bce: a probability) from D's outputs before its update
    assert stats["d_real"].item() == pytest.approx(torch.sigmoid(d_before(real)).mean().item(), abs=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before_g, generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, discriminator.parameters(), strict=True))


@pytest.mark.parametrize("name", PRESETS)
def test_weights_round_trip(tmp_path, name):
    cfg = config(name)
    generator, _ = build_gan(cfg)
    generator.eval()
    save_torch(weights_file(generator), tmp_path / "generator.pt")
    raw = torch.load(tmp_path / "generator.pt", weights_only=True)
    assert raw["config"] == asdict(cfg)
    loaded = load_generator(tmp_path / "generator.pt")
    z = torch.randn(2, *generator.latent_shape)
    assert torch.equal(loaded(z), generator(z))


@pytest.mark.parametrize("name", PRESETS)
def test_minibatch_std_and_nearest_upsampling_build_for_every_family(name):
    """d_mbstd adds one channel (or feature) before D's last layer; g_upsample: nearest replaces every stride-2
    ConvTranspose2d of a conv G with Upsample + 3x3 Conv2d; shapes, ranges and a training step still hold."""
    cfg = config(name, d_mbstd=True, g_upsample="nearest")
    generator, discriminator = build_gan(cfg, "dcgan")
    z = torch.randn(8, *generator.latent_shape)
    images = generator(z)
    assert images.shape == (8, 1, cfg.image_size, cfg.image_size) and images.abs().max() <= 1
    assert discriminator(images).shape == (8,)
    assert any(type(m).__name__ == "MinibatchStdDev" for m in discriminator.modules())
    strided = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2)]
    assert strided == []
    if name not in ("mlp", "mlp-small"):
        assert any(isinstance(m, nn.Upsample) for m in generator.modules())


@pytest.mark.parametrize("name", [n for n in PRESETS if not n.startswith("mlp")])
def test_nearest_last_upsamples_only_the_step_to_full_size(name):
    """g_upsample: nearest_last: one Upsample + 3x3 conv, the step to the image's full size; the steps below it
    stay stride-2 ConvTranspose2d, as in the transposed G, and the image keeps its shape and range."""
    cfg = config(name, g_upsample="nearest_last")
    generator = build_gan(cfg, "dcgan")[0]
    transposed = build_gan(config(name), "dcgan")[0]
    assert [m.size for m in generator.modules() if isinstance(m, nn.Upsample)] == [(cfg.image_size,) * 2]

    def strided(g: nn.Module) -> int:
        return sum(isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2) for m in g.modules())

    assert strided(generator) == strided(transposed) - 1 >= 1
    images = generator(torch.randn(4, *generator.latent_shape))
    assert images.shape == (4, 1, cfg.image_size, cfg.image_size) and images.abs().max() <= 1


def test_minibatch_std_groups_consecutive_samples():
    """A joint D pass holds B reals then B fakes: with B a multiple of the group, no group mixes them."""
    from mnist_gan.gan.layers import MinibatchStdDev

    same = torch.ones(4, 3, 2, 2)  # a group of identical samples: no variety
    varied = torch.randn(4, 3, 2, 2) * 5
    out = MinibatchStdDev(group=4)(torch.cat([same, varied]))
    assert out.shape == (8, 4, 2, 2)
    assert out[:4, 3].max() < 1e-3 and out[4:, 3].min() > 1  # each group sees only its own samples
    assert torch.equal(out[:, :3], torch.cat([same, varied]))
    assert MinibatchStdDev(group=4)(torch.randn(6, 5)).shape == (6, 6)  # 6 samples: groups of 3, flat features


def test_self_modulation_starts_as_batchnorm_and_then_listens_to_z():
    from mnist_gan.gan.models import dcgan_init

    layer = ConditionalBatchNorm2d(8, num_classes=0, latent_dim=4)
    layer.apply(dcgan_init)
    x = torch.randn(16, 8, 3, 3)
    z1, z2 = torch.randn(16, 4), torch.randn(16, 4)
    assert torch.equal(layer(x, None, z1), layer(x, None, z2))  # zero-initialised: plain BN
    nn.init.normal_(layer.modulation[-1].weight)
    assert not torch.allclose(layer(x, None, z1), layer(x, None, z2))
    cfg = config("dcgan", g_self_modulation=True)  # unconditional, no clusters: z alone steers every BN
    generator = build_gan(cfg, "dcgan")[0]
    assert sum(isinstance(m, ConditionalBatchNorm2d) and m.modulation is not None for m in generator.modules()) == 3


def test_a_weights_file_from_before_the_new_network_settings_still_loads(tmp_path):
    generator = build_gan(config("dcgan"), "dcgan")[0].eval()
    old = weights_file(generator)
    for key in ("d_mbstd", "g_upsample", "g_self_modulation"):
        del old["config"][key]
    save_torch(old, tmp_path / "generator.pt")
    loaded = load_generator(tmp_path / "generator.pt")
    z = torch.randn(4, *generator.latent_shape)
    assert torch.equal(loaded(z), generator(z))


@pytest.mark.parametrize("joint", [True, False])
def test_ac_gan_adds_the_cross_entropy_of_ds_classifier_to_both_losses(joint):
    """ac_weight w: D's loss adds w x the cross-entropy of its classifier head on the real images' labels, G's adds
    w x that on its samples' labels, computed in the same pass as D's logits (with D's real and fake images in one
    pass or two); with w = 0 D has no head and the losses are the objective's alone."""
    from tests.conftest import DEFAULTS

    torch.manual_seed(1)
    real, z, y = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 100, 1, 1), torch.arange(8) % 10
    start = {}

    def step(w: float):
        train = updated(DEFAULTS, ac_weight=w, precision="fp32", r1_gamma=0.0 if joint else 1.0).train
        torch.manual_seed(0)
        generator, discriminator = build_gan(gan_config(DEFAULTS.gan, train, 28))
        if start:  # the networks the first call started from (D without its head)
            generator.load_state_dict(start["g"])
            discriminator.load_state_dict(start["d"], strict=False)
        start.update(g=copy.deepcopy(generator.state_dict()), d=copy.deepcopy(discriminator.state_dict()))
        opts = torch.optim.SGD(generator.parameters(), lr=0.0), torch.optim.SGD(discriminator.parameters(), lr=0.0)
        plan = plan_for(train, discriminator, torch.device("cpu"))
        assert plan.joint_d == joint
        d_seen = copy.deepcopy(discriminator)
        stats = train_step(Models(generator, discriminator, *opts), real[None], z[None], y[None], plan, False)
        return stats, generator, discriminator, d_seen

    with_ac, g, d, d_seen = step(1.5)
    assert d.classifier.out_features == 10
    without, _, plain, _ = step(0.0)
    assert plain.classifier is None
    _, classes = d_seen(real, y, classes=True)
    ce_real = nn.functional.cross_entropy(classes, y).item()
    assert with_ac["loss_d"].item() == pytest.approx(without["loss_d"].item() + 1.5 * ce_real, rel=1e-5)
    with torch.no_grad():
        _, classes = d(g(z, y), y, classes=True)
    ce_fake = nn.functional.cross_entropy(classes, y).item()
    # rel 1e-4: D's spectral norm took one more power iteration since G's loss was computed
    assert with_ac["loss_g"].item() == pytest.approx(without["loss_g"].item() + 1.5 * ce_fake, rel=1e-4)


def test_ac_gan_needs_labels_and_a_head():
    """ac_weight needs classes (digits, or self-conditioning clusters); a D built without the head says it has none."""
    from tests.conftest import DEFAULTS

    with pytest.raises(ParamsError, match=r"ac_weight = 1\.0 needs labels for D's classifier"):
        updated(DEFAULTS, ac_weight=1.0, conditional=False, clusters=0)
    clustered = updated(DEFAULTS, ac_weight=1.0, conditional=False, clusters=7)
    assert gan_config(clustered.gan, clustered.train, 28, [1 / 7] * 7).d_classes == 7
    _, discriminator = build_gan(gan_config(DEFAULTS.gan, DEFAULTS.train, 28))
    with pytest.raises(ValueError, match="no auxiliary classifier"):
        discriminator(torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), classes=True)
