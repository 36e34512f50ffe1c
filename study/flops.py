"""FLOPs of the train stage for a setting, counted by torch's FlopCounterMode over one step of the very trainer the
train stage builds (`gan.build.build_trainer`), plus what every epoch adds (the EMA generator's BatchNorm
recalibration and the per-epoch FID probe's samples)."""

from __future__ import annotations

from dataclasses import replace


def train_flops(params: dict) -> dict:
    """Per training image (one step / batch), per G forward, per run. A penalty's double backward is beyond
    FlopCounterMode: such a step is counted without its penalties, and `flops_without_penalties` says so."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mnist_gan.gan.build import build_trainer
    from mnist_gan.settings.params import parse

    p = parse(params)
    train, size = replace(p.train, precision="fp32"), p.normalize.image_size
    b, k = train.batch_size, train.d_steps
    n = max(b * k, 8 * train.clusters)  # enough images for the self-conditioning clusters
    data = {"images": torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8), "labels": torch.arange(n) % 10}
    trainer = build_trainer(p.gan, train, size, data, torch.device("cpu"), cuda_graph=False)
    idx, z = torch.arange(b * k).view(k, b), torch.randn(k, b, *trainer.latent_shape)
    without_penalties = False
    try:
        with FlopCounterMode(display=False) as step:
            trainer.step(idx, z)
    except RuntimeError:  # autograd.grad(create_graph=True) inside the counter
        without_penalties = True
        with FlopCounterMode(display=False) as step:
            trainer.step(idx, z, regularize=False)  # the objective's step alone
    with FlopCounterMode(display=False) as forward, torch.no_grad():
        trainer.g(z[0], None if trainer.labels is None else trainer.labels[idx[0]])
    per_image = step.get_total_flops() / (b * k)
    g_forward = forward.get_total_flops() / b
    images_per_epoch = (p.normalize.max_train_images or 60000) // (b * k) * b * k
    images = images_per_epoch * p.train.epochs
    ema = train.ema_decay > 0 or train.ema_kimg is not None
    extra = p.train.epochs * g_forward * (train.ema_bn_batches * b * ema + p.train.quality_samples)
    return {
        "flops_per_image": per_image,
        "g_forward_flops": g_forward,
        "images": images,
        "train_flops": per_image * images + extra,
        "flops_without_penalties": without_penalties,
    }
