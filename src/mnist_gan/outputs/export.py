"""The generator for use outside this repo: safetensors (weights + config, no pickle) and ONNX (checked against
torch by onnxruntime), both carrying the same metadata, which the model card and the digit server read.

ONNX graph: inputs ``z`` (N, latent) float32 and, for a model with labels, ``y`` (N,) int64 (digits 0-9 when
conditional, cluster ids when self-conditioned: the server draws those from ``class_prior``); output ``images``
(N, 1, H, W) in [-1, 1]; N is dynamic. Exported with the exporter torch documents now
(``torch.onnx.export(..., dynamo=True, dynamic_shapes=...)``).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist_gan.errors import PipelineError
from mnist_gan.gan.models import Generator, asks_digits
from mnist_gan.settings.configs import GANConfig, recorded_gan
from mnist_gan.storage import atomic_path, write_bytes

ONNX_TOLERANCE = 1e-4  # max |onnxruntime - torch| of any pixel (images in [-1, 1]); ~1e-7 measured, fp32 both ways
CHECK_BATCHES = (1, 7, 257)  # batch sizes the ONNX model is checked at: one, odd, more than any grid the server draws
OPSET = 18


def model_kind(cfg: GANConfig) -> str:
    """conditional (asks for digits) | self-conditioned (cluster ids drawn by the sampler) | unconditional."""
    return "conditional" if asks_digits(cfg) else "self-conditioned" if cfg.num_classes else "unconditional"


class FlatLatent(nn.Module):
    """G with a flat z (N, latent) as ONNX consumers expect; G itself takes z shaped (N, *latent_shape)."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z.reshape(z.shape[0], *self.generator.latent_shape), y)


def metadata(weights: dict, metrics: dict | None) -> dict[str, str]:
    """The string -> string header both exported files carry (safetensors and ONNX allow only strings): a function
    of the weights file and the metrics alone, so an export reproduces byte for byte (no git revision, no clock)."""
    cfg = recorded_gan(weights["config"])
    meta = {
        "format": "mnist-gan generator 1",
        "kind": model_kind(cfg),
        "config": json.dumps(asdict(cfg), sort_keys=True),
        "latent": str(math.prod(Generator(cfg).latent_shape)),
        "ema": json.dumps(bool(weights.get("ema", False))),
        "params": json.dumps(weights.get("params"), sort_keys=True),
        "params_digest": str(weights.get("params_digest", "unknown")),
    }
    if metrics is not None:
        meta["metrics"] = json.dumps(metrics, sort_keys=True)
    return meta


def save_safetensors(generator: Generator, path: Path, meta: dict[str, str]) -> None:
    """G's state dict (BatchNorm statistics included) as safetensors, with `meta` in the header; atomic."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    write_bytes(path, canonical_header(save(state, metadata=meta)))


def canonical_header(blob: bytes) -> bytes:
    """A safetensors file with its JSON header's keys sorted: the library writes the metadata in a hash map's
    order, which changes from process to process, so the same generator gave different bytes (and a DVC output
    that changed with no change of its deps). The tensor bytes and their offsets are untouched."""
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    encoded = header.encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header with spaces to 8-byte alignment
    return len(encoded).to_bytes(8, "little") + encoded + blob[8 + size :]


def load_safetensors(path: Path, device: str | torch.device = "cpu") -> Generator:
    """Rebuild the generator from a safetensors file alone (no pickle): Generator(GANConfig(**config))."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, SafetensorError) as e:
        raise PipelineError(f"{path} is not a readable safetensors file: {str(e).splitlines()[0][:160]}") from None
    if "config" not in meta:
        raise PipelineError(f"{path} has no generator config in its metadata")
    generator = Generator(recorded_gan(json.loads(meta["config"])))
    generator.load_state_dict(state)
    return generator.to(device).eval()


def example_inputs(cfg: GANConfig, latent: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent, generator=rng)
    return z, (torch.randint(cfg.num_classes, (n,), generator=rng) if cfg.num_classes else None)


def export_onnx(generator: Generator, path: Path, meta: dict[str, str]) -> None:
    """G (eval mode, fp32) as ONNX with a dynamic batch dimension and `meta` as metadata_props; atomic."""
    import onnx

    module = FlatLatent(generator.float().cpu().eval()).eval()
    z, y = example_inputs(generator.cfg, int(meta["latent"]), 4, 0)
    batch = torch.export.Dim("batch", min=1, max=65536)
    args, names, shapes = (
        ((z, y), ["z", "y"], {"z": {0: batch}, "y": {0: batch}}) if y is not None else ((z,), ["z"], {"z": {0: batch}})
    )
    with warnings.catch_warnings():  # the exporter's notes on axis naming, not problems of this model
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            input_names=names,
            output_names=["images"],
            dynamic_shapes=shapes,
            opset_version=OPSET,
            optimize=True,
            verbose=False,
        )
    model = program.model_proto
    for node in model.graph.node:  # the exporter's debug notes: stack traces with this machine's absolute paths
        del node.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))


def save_checked_safetensors(generator: Generator, path: Path, meta: dict[str, str]) -> None:
    """`save_safetensors`, then reload the file alone and require the same samples, bit for bit."""
    from mnist_gan.gan.sampling import generate

    save_safetensors(generator, path, meta)
    if not generate(load_safetensors(path), 64, seed=0).equal(generate(generator, 64, seed=0)):
        raise PipelineError(f"{path} does not reproduce the generator's samples bit for bit")


def export_generator(weights: Path, metrics: dict, grid: Path, out_dir: Path) -> str:
    """The export stage's work: from generator.pt (and the evaluate stage's metrics, the sample stage's grid) write
    generator.safetensors (checked bit for bit after a reload), generator.onnx (checked by onnxruntime),
    samples.png and MODEL_CARD.md into `out_dir`; return the stage's one line."""
    from mnist_gan.gan.sampling import load_generator
    from mnist_gan.outputs.model_card import render
    from mnist_gan.storage import load_torch, write_text

    generator = load_generator(weights)  # the EMA generator, BN statistics recomputed, eval mode
    meta = metadata(load_torch(weights, "generator weights"), metrics)
    save_checked_safetensors(generator, out_dir / "generator.safetensors", meta)
    export_onnx(generator, out_dir / "generator.onnx", meta)
    worst = check_onnx(out_dir / "generator.onnx", generator)
    write_bytes(out_dir / "samples.png", Path(grid).read_bytes())
    write_text(out_dir / "MODEL_CARD.md", render(meta))
    return (
        f"{out_dir / 'generator.safetensors'} (samples bitwise equal after reload), {out_dir / 'generator.onnx'} "
        f"(onnxruntime vs torch: max |diff| {worst:.2g} <= {ONNX_TOLERANCE:g} at batches "
        f"{', '.join(map(str, CHECK_BATCHES))}), {out_dir / 'MODEL_CARD.md'}"
    )


def check_onnx(path: Path, generator: Generator, batches=CHECK_BATCHES, tolerance: float = ONNX_TOLERANCE) -> float:
    """Largest |onnxruntime - torch| over `batches`; raises PipelineError beyond `tolerance`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    module = FlatLatent(generator).eval()
    latent = int(session.get_modelmeta().custom_metadata_map["latent"])
    worst = 0.0
    for n in batches:
        z, y = example_inputs(generator.cfg, latent, n, seed=n)
        with torch.no_grad():
            expected = module(z, y).numpy()
        feeds = {"z": z.numpy(), **({"y": y.numpy()} if y is not None else {})}
        got = session.run(["images"], feeds)[0]
        if got.shape != expected.shape:
            raise PipelineError(f"{path}: batch {n} gives images of shape {got.shape}, torch {expected.shape}")
        diff = float(np.abs(got - expected).max())
        worst = max(worst, diff)
        if not diff <= tolerance:
            raise PipelineError(
                f"{path}: onnxruntime differs from torch by {diff:.3g} at batch {n} (tolerance {tolerance:g})"
            )
    return worst
