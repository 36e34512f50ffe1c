"""The exported generator's model card, in the Hugging Face convention: YAML metadata, then Markdown.

Built from the metadata both exported files carry (`export.metadata`), so the card, the safetensors header,
the ONNX metadata and the digit server's `/model` always say the same thing. Torch-free.
"""

from __future__ import annotations

import json

import yaml

from mnist_gan.evaluation.registry import METRICS
from mnist_gan.outputs.markdown import markdown_table

FILES = {  # what to upload to a model hub, as is: the card is its README.md there
    "MODEL_CARD.md": "this card (README.md on a model hub)",
    "generator.safetensors": "weights + config in the header (no pickle); torch + this package's Generator",
    "generator.onnx": "the same generator as an ONNX graph: any onnxruntime, no torch",
    "samples.png": "the sample grid of the run",
}


def card_metrics() -> list[str]:
    """The registry's headline metrics, in its order."""
    return [k for k, m in METRICS.items() if m.headline]


TRAIN_KEYS = (
    "model",
    "conditional",
    "clusters",
    "loss",
    "spectral_norm",
    "r1_gamma",
    "d_steps",
    "lr",
    "lr_d_ratio",
    "beta1",
    "beta2",
    "batch_size",
    "epochs",
    "ema_decay",
    "seed",
    "precision",
)


def card_metadata(meta: dict[str, str]) -> dict:
    """The card's YAML header: what a hub indexes (library, tags, datasets, metrics with values)."""
    cfg = json.loads(meta["config"])
    kind = meta["kind"]
    metrics = json.loads(meta.get("metrics", "null")) or {}
    gen = metrics.get("generated", {})
    return {
        "library_name": "onnx",
        **({"pipeline_tag": "unconditional-image-generation"} if kind != "conditional" else {}),
        "tags": ["gan", cfg["model"], "mnist", kind, "pytorch", "safetensors", "onnx", "dvc"],
        "datasets": ["mnist"],
        "metrics": [k for k in card_metrics() if k in gen],
        "model-index": [
            {
                "name": f"mnist-gan-{cfg['model']}-{kind}",
                "results": [
                    {
                        "task": {"type": "image-generation", "name": "MNIST digit generation"},
                        "dataset": {"type": "mnist", "name": "MNIST (test split, 10,000 images)"},
                        "metrics": [
                            {"type": k, "name": METRICS[k].label, "value": round(float(gen[k]), 6)}
                            for k in card_metrics()
                            if k in gen
                        ],
                    }
                ],
            }
        ],
    }


def _trained(meta: dict[str, str]) -> str:
    params = json.loads(meta.get("params", "null")) or {}
    skip = {"clusters"} if params.get("conditional") else set()  # clusters apply to unconditional runs only
    shown = [f"`{k}: {json.dumps(params[k])}`" for k in TRAIN_KEYS if k in params and k not in skip]
    return ", ".join(shown) if shown else "(the training params were not recorded in this generator file)"


def _metrics_table(meta: dict[str, str]) -> str:
    metrics = json.loads(meta.get("metrics", "null"))
    if not metrics:
        return "No evaluation was recorded with this export.\n"
    gen, floor = metrics["generated"], metrics["real_floor"]
    rows = [
        [m.label, m.reading(gen), m.reading(floor) if floor.get(m.key) is not None else "", m.better]
        for m in map(METRICS.get, card_metrics())
        if m.key in gen
    ]
    return markdown_table(["metric", "this generator", "real data (floor)", "better"], rows) + "\n"


def _conditioning(kind: str, num_classes: int) -> dict[str, str]:
    """What the card says of a generator of this conditioning: what it draws, and how each code example feeds `y`
    (onnxruntime: `y_feed` after `prior_line`; torch: `y_torch`)."""
    return {
        "conditional": {
            "what": "draws the digit it is asked for: inputs `z` and `y` (the digit, 0-9)",
            "y_feed": ', "y": np.full(16, 7, dtype=np.int64)',
            "prior_line": "",
            "y_torch": ", torch.full((16,), 7)",
        },
        "self-conditioned": {
            "what": (
                f"is an unconditional generator: it was trained without digit labels, on {num_classes} k-means "
                f"clusters of the training images (self-conditioning, Liu et al. 2020); input `y` is a cluster id, "
                f"drawn from the clusters' shares (`class_prior` in the metadata), and no digit can be asked for"
            ),
            "y_feed": ', "y": np.random.default_rng(0).choice(len(prior), 16, p=prior)',
            "prior_line": (
                "prior = np.array(json.loads(session.get_modelmeta().custom_metadata_map['config'])"
                "['class_prior']); prior /= prior.sum()\n"
            ),
            "y_torch": ", torch.multinomial(torch.tensor(generator.cfg.class_prior), 16, True)",
        },
        "unconditional": {"what": "draws digits freely: input `z` only", "y_feed": "", "prior_line": "", "y_torch": ""},
    }[kind]


def render(meta: dict[str, str]) -> str:
    """The whole card: YAML front matter, then the Markdown body."""
    cfg = json.loads(meta["config"])
    kind, latent = meta["kind"], int(meta["latent"])
    what, y_feed, prior_line, y_torch = _conditioning(kind, cfg["num_classes"]).values()
    size = cfg["image_size"]
    resized = " (MNIST's 28x28 digits resized up for this network)" if size != 28 else ""
    header = yaml.safe_dump(card_metadata(meta), sort_keys=False, allow_unicode=True)
    files = markdown_table(["file", "what it is"], [[f"`{name}`", what_] for name, what_ in FILES.items()])
    return f"""---
{header}---

# mnist-gan generator: {cfg["model"]}, {kind}

A GAN generator of {size}x{size} handwritten digits trained on MNIST by the mnist-gan DVC pipeline
(see "How it was trained"). It {what}. `z` is standard normal noise of length {latent}; the output is a batch of
{cfg["channels"]} x {cfg["image_size"]} x {cfg["image_size"]} images in [-1, 1] (`(x + 1) / 2` for [0, 1]).

{files}

![samples of this generator](samples.png)

## How it was trained

Trained with the settings of params digest `{meta["params_digest"]}` (`dvc repro` in the repository, whose
dvc.lock records this file's hash; the generator is {"the EMA of G" if json.loads(meta["ema"]) else "G itself"},
with its BatchNorm statistics in eval mode). Settings: {_trained(meta)}.

## Evaluation

Measured by the pipeline's evaluate stage on 10,000 samples against the 10,000 MNIST test images. **FID here is
the Frechet distance in the 128-d feature space of this project's own MNIST classifier, not Inception FID**:
compare it with the real-data floor beside it and with other runs of this project, never with published
Inception FIDs. The floor scores as many real training images the same way.

{_metrics_table(meta)}
## Use

With torch and this package (`pip install -e .` in the repository), no pickle involved:

```python
import torch; from mnist_gan.outputs.export import load_safetensors
generator = load_safetensors("generator.safetensors")  # Generator(GANConfig(**config)), eval mode
images = generator(torch.randn(16, *generator.latent_shape){y_torch})
```

With onnxruntime and numpy only:

```python
import json, numpy as np, onnxruntime as ort
session = ort.InferenceSession("generator.onnx")
{prior_line}z = np.random.default_rng(0).standard_normal((16, {latent}), dtype=np.float32)
images = session.run(None, {{"z": z{y_feed}}})[0]
```

Or serve it: `mnist-gan serve --model generator.onnx` (a page and `GET /generate.png?n=16&seed=3`).

## Intended use and limits

For demonstrations, teaching and tests of GAN tooling: it draws MNIST-like digits and nothing else. The samples
are {size}x{size} grayscale{resized}; some are malformed or ambiguous (see precision above), and a GAN may drop
or under-draw some modes (see recall and classes covered). It reproduces the style of MNIST's writers, US census
employees and high-school students, and is no model of handwriting in general. Not for producing data that is
passed off as real handwriting, nor as training data for anything whose errors matter.
"""
