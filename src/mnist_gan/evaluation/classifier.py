"""A small CNN trained on real MNIST: the feature space of every evaluation metric.

FID needs Inception weights from the internet; for MNIST the field's precedent (tensorflow/gan's
``mnist_frechet_distance`` and ``mnist_score``) is a classifier trained on MNIST itself. Its 128-d
penultimate layer plays the role of Inception's pool3 features, its softmax that of Inception's logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mnist_gan.data.pixels import to_float
from mnist_gan.errors import PipelineError
from mnist_gan.storage import load_torch

CLASSIFIER_SIZE = 28  # the classifier sees MNIST at its own resolution


def at_classifier_size(images: torch.Tensor) -> torch.Tensor:
    """dcgan64 samples downsized (antialiased bilinear) to 28x28, as the classifier was trained."""
    if images.shape[-1] == CLASSIFIER_SIZE:
        return images
    size = (CLASSIFIER_SIZE, CLASSIFIER_SIZE)
    return F.interpolate(images.float(), size=size, mode="bilinear", antialias=True).clamp(-1, 1)


class MnistClassifier(nn.Module):
    """(B, 1, 28, 28) in [-1, 1] -> logits (B, 10); `features` gives the 128-d penultimate activations."""

    feature_dim = 128

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Flatten(1),
            nn.Linear(64 * 7 * 7, self.feature_dim),
            nn.ReLU(inplace=True),  # 128: the feature space
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.feature_dim, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def predict(model: MnistClassifier, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, 128), probabilities (N, 10)) for float images in [-1, 1] (or uint8, converted).

    Always fp32: these features are what every metric is computed on. Channels-last (NHWC; `model` is put in that
    layout, in place): the layout oneDNN and cuDNN convolve natively, several times faster on a CPU than NCHW for
    these small convolutions, with the same features to rounding."""
    device = next(model.parameters()).device
    model.to(memory_format=torch.channels_last)
    feats, probs = [], []
    for chunk in images.split(batch_size):
        x = to_float(chunk) if chunk.dtype == torch.uint8 else chunk.float()
        f = model.features(x.to(device, memory_format=torch.channels_last))
        feats.append(f.cpu())
        probs.append(torch.softmax(model.head(f), dim=1).cpu())
    return torch.cat(feats), torch.cat(probs)


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images whose most probable class is their label (the classifier's test accuracy, and the evaluate
    stage's label accuracy of a conditional generator)."""
    return float((probs.argmax(1) == labels).double().mean())


def test_accuracy(model: MnistClassifier, images_u8: torch.Tensor, labels: torch.Tensor) -> float:
    return accuracy(predict(model, images_u8)[1], labels)


test_accuracy.__test__ = False  # a library function, not a pytest test


def require_accuracy(value: float, minimum: float) -> None:
    """A classifier below `classifier.min_accuracy` stops the stage: its features would not be trustworthy."""
    if value < minimum:
        raise PipelineError(
            f"classifier test accuracy {value:.4f} is below classifier.min_accuracy {minimum}: "
            f"its features would make the metrics meaningless"
        )


def classifier_file(model: MnistClassifier) -> dict:
    """What models/classifier.pt holds: the weights, on the CPU."""
    return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}


def load_classifier(path, device: torch.device | str = "cpu") -> MnistClassifier:
    state = load_torch(path, "classifier weights").get("state_dict")
    model = MnistClassifier()
    try:
        model.load_state_dict(state if isinstance(state, dict) else {})
    except RuntimeError as e:
        raise PipelineError(f"{path} does not hold MnistClassifier weights: {str(e).splitlines()[0]}") from None
    return model.to(device).eval()
