"""Every architecture: builds from params, right shapes and ranges, trains a step, round-trips its weights."""

from dataclasses import asdict

import pytest
import torch
from torch import nn

from mnist_gan.models import GANConfig, build_gan, weights_file
from mnist_gan.params import load_params
from mnist_gan.sampling import load_generator
from mnist_gan.storage import save_torch
from mnist_gan.training import make_optimizers, train_step, TrainConfig

# The five seed systems as params overrides (the README recipes use the same values).
PRESETS = {
    "dcgan": {},
    "mlp": {"model": "mlp", "latent_dim": 64, "g_hidden": [256, 256], "d_hidden": [256, 256]},
    "mlp-small": {"model": "mlp", "latent_dim": 64, "g_hidden": [256], "d_hidden": [128],
                  "g_activation": "leaky_relu", "leaky_slope": 0.1},
    "conv": {"model": "conv"},
    "dcgan64": {"model": "dcgan64", "image_size": 64},
}


def config(name: str) -> GANConfig:
    params = load_params()
    overrides = dict(PRESETS[name])
    image_size = overrides.pop("image_size", 28)
    params.update(overrides)
    params["normalize"] = {**params["normalize"], "image_size": image_size}
    return GANConfig.from_params(params)


@pytest.mark.parametrize("name", PRESETS)
def test_shapes_and_ranges(name):
    cfg = config(name)
    generator, discriminator = build_gan(cfg)
    z = torch.randn(4, *generator.latent_shape)
    images = generator(z)
    assert images.shape == (4, 1, cfg.image_size, cfg.image_size)
    assert images.min() >= -1 and images.max() <= 1
    logits = discriminator(images)
    assert logits.shape == (4,)


def test_seed_002_sizes():
    generator, discriminator = build_gan(config("mlp-small"))
    g_linear = [m for m in generator.modules() if isinstance(m, nn.Linear)]
    d_linear = [m for m in discriminator.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_linear] == [(64, 256), (256, 784)]
    assert [(m.in_features, m.out_features) for m in d_linear] == [(784, 128), (128, 1)]
    assert all(m.negative_slope == 0.1 for m in generator.modules() if isinstance(m, nn.LeakyReLU))


def test_seed_003_layers():
    generator, discriminator = build_gan(config("conv"))
    convt = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])
             for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convt == [(100, 256, 4, 2, 1), (256, 128, 4, 2, 1), (128, 1, 3, 1, 1)]
    conv = [(m.in_channels, m.out_channels) for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert conv == [(1, 64), (64, 128), (128, 256)]
    assert isinstance(discriminator.main[-2], nn.Linear) and discriminator.main[-2].in_features == 256 * 3 * 3


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
    opt_g, opt_d = make_optimizers(generator, discriminator, TrainConfig())
    before_g = [p.detach().clone() for p in generator.parameters()]
    before_d = [p.detach().clone() for p in discriminator.parameters()]
    real = torch.rand(8, 1, cfg.image_size, cfg.image_size) * 2 - 1
    stats = train_step(generator, discriminator, opt_g, opt_d, real, torch.randn(8, *generator.latent_shape))
    assert set(stats) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(torch.isfinite(v) for v in stats.values())
    assert 0 <= stats["d_real"] <= 1 and 0 <= stats["d_fake"] <= 1
    assert any(not torch.equal(a, b) for a, b in zip(before_g, generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, discriminator.parameters()))


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
