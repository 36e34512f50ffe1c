"""The export stage's files: safetensors round trip, ONNX against torch, and a model card that parses and runs."""

from __future__ import annotations

import json
import re
import sys

import pytest
import torch
import yaml
from markdown_it import MarkdownIt

from mnist_gan.errors import PipelineError
from mnist_gan.evaluation.registry import METRICS as REGISTRY
from mnist_gan.gan.models import build_gan, weights_file
from mnist_gan.gan.sampling import generate, load_generator
from mnist_gan.outputs.export import check_onnx, export_onnx, load_safetensors, metadata, model_kind, save_safetensors
from mnist_gan.outputs.model_card import render
from mnist_gan.storage import save_torch
from stages import export
from tests.conftest import PY, ROOT, cli, run, seeds_gan

METRICS = {
    "generated": {
        "fid": 12.5,
        "classifier_score": 9.5,
        "classes_covered": 10,
        "kl_to_uniform": 0.01,
        "precision": 0.8,
        "recall": 0.75,
    },
    "real_floor": {
        "fid": 3.2,
        "classifier_score": 9.8,
        "classes_covered": 10,
        "kl_to_uniform": 0.0001,
        "precision": 0.88,
        "recall": 0.89,
    },
}
KINDS = {  # kind -> GANConfig overrides
    "conditional": {"num_classes": 10},
    "unconditional": {},
    "self-conditioned": {"num_classes": 4, "class_prior": [0.4, 0.3, 0.2, 0.1]},
}


def assert_same_as_torch(images, generator, feeds: dict) -> None:
    """onnxruntime's `images` for `feeds` equal the torch generator's output for the same inputs (to 1e-4)."""
    z = torch.from_numpy(feeds["z"]).view(len(feeds["z"]), *generator.latent_shape)
    with torch.no_grad():
        want = generator(z, torch.from_numpy(feeds["y"]) if "y" in feeds else None)
    torch.testing.assert_close(torch.from_numpy(images), want, atol=1e-4, rtol=0)


def trained_like(kind: str, model: str = "dcgan", seed: int = 0, **gan) -> dict:
    """A generator weights file as the train stage writes it (random weights, BN statistics not the defaults)."""
    torch.manual_seed(seed)
    generator, _ = build_gan(seeds_gan(model=model, **KINDS[kind], **gan), "dcgan")
    with torch.no_grad():  # label embeddings start at zero (plain BN): give labels an effect, and BatchNorm
        for p in generator.parameters():  # real running statistics from a few train-mode passes
            p.add_(torch.randn_like(p) * 0.1)
        for _ in range(3):
            z = torch.randn(32, *generator.latent_shape)
            y = torch.randint(generator.cfg.num_classes, (32,)) if generator.cfg.num_classes else None
            generator(z, y)
    params = {"model": model, "conditional": kind == "conditional", "loss": "hinge", "epochs": 10}
    return {**weights_file(generator.eval()), "ema": True, "params": params, "params_digest": "0123456789abcdef"}


@pytest.fixture(scope="module", params=list(KINDS))
def exported(request, tmp_path_factory):
    """(kind, weights dict, folder with generator.pt and the export stage's four files)."""
    kind = request.param
    out = tmp_path_factory.mktemp(f"export-{kind}")
    weights = trained_like(kind)
    save_torch(weights, out / "generator.pt")
    (out / "metrics.json").write_text(json.dumps(METRICS))
    (out / "grid.png").write_bytes((ROOT / "docs" / "samples.png").read_bytes())
    # the stage's command in-process (the tiny repo's repro runs it as DVC does, a process)
    args = [str(p) for p in (out / "generator.pt", out / "metrics.json", out / "grid.png", out)]
    done = cli().invoke(export.app, args)
    assert done.exit_code == 0, done.output
    assert "max |diff|" in done.output
    return kind, weights, out


def test_exports_of_one_generator_are_the_same_bytes(tmp_path):
    """The export stage's files are functions of its deps, as DVC outputs must be: the safetensors library writes
    its metadata in a hash map's order (a new one on every call: two saves differed), and the ONNX exporter notes
    on every node a stack trace with this checkout's absolute paths (two clones differed)."""
    import onnx

    weights = trained_like("conditional")
    save_torch(weights, tmp_path / "generator.pt")
    generator = load_generator(tmp_path / "generator.pt")
    meta = metadata(weights, METRICS)
    for name in ("a", "b"):
        save_safetensors(generator, tmp_path / f"{name}.safetensors", meta)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert load_safetensors(tmp_path / "a.safetensors").state_dict().keys() == generator.state_dict().keys()
    export_onnx(generator, tmp_path / "g.onnx", meta)
    model = onnx.load(str(tmp_path / "g.onnx"))
    assert not [n.name for n in model.graph.node if n.metadata_props]
    assert str(ROOT).encode() not in (tmp_path / "g.onnx").read_bytes()


@pytest.mark.slow
def test_safetensors_reload_samples_bitwise_equal(exported):
    kind, weights, out = exported
    generator = load_safetensors(out / "generator.safetensors")
    from mnist_gan.gan.sampling import load_generator

    original = load_generator(out / "generator.pt")
    assert model_kind(generator.cfg) == kind
    assert torch.equal(generate(generator, 50, seed=3), generate(original, 50, seed=3))
    from safetensors import safe_open

    with safe_open(str(out / "generator.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["config"]) == weights["config"]
    assert meta["params_digest"] == "0123456789abcdef"


@pytest.mark.slow
def test_safetensors_file_is_the_plain_layout_with_no_pickle(exported):
    """The file read by hand, not through the library that wrote it: an 8-byte header length, a JSON header
    naming every tensor of G's state dict, then nothing but the raw tensor bytes it describes (a torch.save file,
    a zip archive with a pickle inside, fails here)."""
    _, weights, out = exported
    data = (out / "generator.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert set(tensors) == set(weights["state_dict"])
    assert max(v["data_offsets"][1] for v in tensors.values()) == len(data) - 8 - size


@pytest.mark.slow
def test_onnx_matches_torch_with_dynamic_batch(exported):
    import numpy as np
    import onnxruntime as ort

    kind, weights, out = exported
    session = ort.InferenceSession(str(out / "generator.onnx"))
    inputs = {i.name: i for i in session.get_inputs()}
    assert set(inputs) == ({"z", "y"} if kind != "unconditional" else {"z"})
    assert inputs["z"].shape[1] == 100 and isinstance(inputs["z"].shape[0], str)  # dynamic batch
    assert session.get_outputs()[0].shape[1:] == [1, 28, 28]
    z = np.random.default_rng(0).standard_normal((5, 100), dtype=np.float32)
    feeds = {"z": z, **({"y": np.arange(5, dtype=np.int64) % 4} if "y" in inputs else {})}
    images = session.run(["images"], feeds)[0]
    assert images.shape == (5, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert_same_as_torch(images, load_safetensors(out / "generator.safetensors"), feeds)


@pytest.mark.slow
def test_onnx_check_fails_for_a_different_generator(exported, tmp_path):
    kind, _, out = exported
    other, _ = build_gan(seeds_gan(**KINDS[kind]), "dcgan")  # same shape, other weights
    with pytest.raises(PipelineError, match="onnxruntime differs from torch"):
        check_onnx(out / "generator.onnx", other.eval())


def front_matter(card: str) -> tuple[dict, str]:
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", card, re.S)
    assert match, "the card does not start with YAML front matter"
    return yaml.safe_load(match.group(1)), match.group(2)


@pytest.mark.slow
def test_model_card_parses_and_reports_metrics_beside_the_floor(exported):
    kind, _, out = exported
    meta, body = front_matter((out / "MODEL_CARD.md").read_text())
    assert meta["library_name"] and "mnist" in meta["datasets"] and "gan" in meta["tags"] and kind in meta["tags"]
    headline = [k for k, m in REGISTRY.items() if m.headline and k in METRICS["generated"]]  # the registry's order
    assert meta["metrics"] == headline and len(headline) >= 5
    results = meta["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in results}["fid"] == 12.5
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    cells = [t.content for t in tokens if t.type == "inline"]
    row = cells.index("FID in classifier features")
    assert cells[row + 1 : row + 3] == ["12.50", "3.20"]  # this generator, then the real floor
    assert "not Inception FID" in body
    images = [c.attrGet("src") for t in tokens if t.type == "inline" for c in t.children if c.type == "image"]
    assert images == ["samples.png"] and (out / "samples.png").is_file()


@pytest.mark.slow
def test_model_card_loading_code_runs_as_written(exported):
    """Every Python block of the card, run in the exported folder with nothing else: the user's three lines."""
    kind, _, out = exported
    _, body = front_matter((out / "MODEL_CARD.md").read_text())
    blocks = [t.content for t in MarkdownIt("commonmark").parse(body) if t.type == "fence" and t.info == "python"]
    assert len(blocks) == 2
    for code in blocks:
        check = code + "\nassert tuple(images.shape) == (16, 1, 28, 28), images.shape\n"
        run([sys.executable, "-c", check], out)


def test_card_renders_without_metrics_or_params():
    weights = trained_like("unconditional")
    weights.pop("params")
    card = render(metadata(weights, None))
    meta, body = front_matter(card)
    assert meta["metrics"] == [] and "No evaluation was recorded" in body


@pytest.mark.slow
def test_export_stage_fails_in_one_line(tmp_path):
    (tmp_path / "generator.pt").write_bytes(b"not a torch file")
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    (tmp_path / "grid.png").write_bytes(b"\x89PNG")
    for args, expected in (
        ([tmp_path / "generator.pt", tmp_path / "missing.json", tmp_path / "grid.png"], "run the evaluate stage"),
        ([tmp_path / "generator.pt", tmp_path / "metrics.json", tmp_path / "grid.png"], "not a valid torch file"),
    ):
        done = run(PY + ["stages.export", *args, tmp_path / "out"], check=False)
        assert done.returncode == 1, done.stderr
        assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.slow
def test_export_of_the_other_families(tmp_path):
    """mlp and conv, whose latent is not (z, 1, 1) (conv takes a 7x7 noise map, flattened in the ONNX input), and
    dcgan64 (64x64 images); the recipes (tests/test_recipes.py) train every family through DVC."""
    import numpy as np
    import onnxruntime as ort

    for model, gan in (("mlp", {}), ("conv", {}), ("dcgan64", {"image_size": 64})):
        weights = trained_like("conditional", model=model, **gan)
        save_torch(weights, tmp_path / "g.pt")
        from mnist_gan.gan.sampling import load_generator

        generator = load_generator(tmp_path / "g.pt")
        meta = metadata(weights, METRICS)
        export_onnx(generator, tmp_path / f"{model}.onnx", meta)
        latent = int(np.prod(generator.latent_shape))  # conv: a 7x7 map of latent_dim channels, flattened
        feeds = {
            "z": np.random.default_rng(1).standard_normal((7, latent), dtype=np.float32),
            "y": np.arange(7, dtype=np.int64) % 10,
        }
        session = ort.InferenceSession(str(tmp_path / f"{model}.onnx"))
        assert_same_as_torch(session.run(["images"], feeds)[0], generator, feeds)
        save_safetensors(generator, tmp_path / f"{model}.safetensors", meta)
        assert torch.equal(
            generate(load_safetensors(tmp_path / f"{model}.safetensors"), 8, 0), generate(generator, 8, 0)
        )
        size = generator.cfg.image_size  # the card says the size this generator draws
        card = render(meta)
        assert f"{size}x{size} handwritten digits" in card and f"are {size}x{size} grayscale" in card
        assert ("resized up" in card) == (size != 28)
