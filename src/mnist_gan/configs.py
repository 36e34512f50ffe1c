"""The configs models and trainer take: plain dataclasses, torch-free, imported by every module that needs one
(models, families, layers, training, parallel), so none of those import each other for a type.

`config.py` fills them from validated params; a weights file stores `asdict(GANConfig)` so a generator is
rebuilt from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GANConfig:
    model: str = "dcgan"  # a key of FAMILIES
    latent_dim: int = 100  # length of z (channels of the noise map for `conv`)
    g_features: int = 64  # conv models: generator width, "ngf" in dcgan/main.py
    d_features: int = 64  # conv models: discriminator width, "ndf"
    g_hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp: generator hidden sizes
    d_hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp: discriminator hidden sizes
    g_activation: str = "relu"  # hidden activation of G: relu | leaky_relu
    leaky_slope: float = 0.2  # negative slope of every LeakyReLU
    image_size: int = 28  # H = W of the images; 28 for dcgan/conv, 64 for dcgan64, any for mlp
    channels: int = 1  # MNIST is grayscale
    num_classes: int = 0  # 0 = unconditional; 10 = G(z, y) and D(x, y) for digits y; K = K self-conditioning clusters
    class_prior: list[float] | None = None  # self-conditioning (clusters.py): each cluster's share of the training
    #   images; y is then a cluster id drawn from it, never a digit: an unconditional model to its user
    spectral_norm: bool = False  # spectral normalization of every D layer
    d_batchnorm: bool = True  # BatchNorm in D's hidden layers (conv families)


@dataclass
class TrainConfig:
    lr: float = 2e-4  # Adam learning rate of G
    lr_d: float | None = None  # Adam learning rate of D; None = lr
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 128  # per process when several train together (torchrun)
    epochs: int = 5
    seed: int = 42
    log_every: int = 50  # steps between logged points, progress updates and NaN checks
    precision: str = "fp32"  # resolved: fp32 | bf16 (autocast on CUDA or on a CPU with native bf16)
    channels_last: bool = True  # NHWC activations for conv models (faster oneDNN / cuDNN kernels)
    compile: bool = False  # torch.compile G and D
    loss: str = "bce"  # a key of losses.OBJECTIVES
    d_steps: int = 1  # D (critic) updates per G update, each on its own real batch
    gp_weight: float = 0.0  # gradient penalty weight, any loss (config.train_config resolves params' null)
    r1_gamma: float = 0.0  # R1 penalty weight on real data; 0 = off
    ema_decay: float = 0.0  # EMA of G's weights; 0 = off
    ema_rampup: float | None = None  # half-life at most this share of the images seen (StyleGAN2-ADA); None = TF ramp
    ema_bn_batches: int = 50  # noise batches that recompute the EMA generator's BatchNorm statistics
