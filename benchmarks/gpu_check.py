"""The GPU path, proven in one command: speed, a full default run, its metrics, determinism and export on a GPU.

Drives the library (build_trainer, Trainer.fit, the classifier and the evaluation), not `dvc repro`, so it needs
only torch, torchvision, numpy, pyyaml, typer, rich, torchmetrics, PIL, safetensors, onnx and onnxruntime: what a
GPU machine's Python usually has. Its data travels with it: `--raw` is a folder holding the four MNIST idx files,
plain (the fetch stage's data/raw/MNIST/raw, the default) or gzipped as first published (~11 MB to carry).

    python -m benchmarks.gpu_check --out DIR                            # on a GPU machine, ~4 min on one H200
    python -m benchmarks.gpu_check --device cpu --quick --out DIR       # every section on a slice, in seconds

Sections, in order (each one's figures are written to DIR/gpu_check.json as soon as it ends, so a run stopped by
a time limit keeps what it measured; a section that fails records its error and the next one runs):

1. machine: GPU, torch, CUDA and cuDNN versions, native bf16.
2. speed: img/s of the default's training step in fp32 and bf16, eager and replayed as a CUDA graph
   (gan/graphs.py), then torch.compile (default and "reduce-overhead") when the time budget allows; the seeds'
   loop (benchmarks/train_speed.py) on the same GPU, against this trainer on the seeds' networks.
3. classifier: the metrics' classifier trained on this device (params.yaml `classifier:`).
4. full run: the default (params.yaml) for all its epochs, with the per-epoch FID probe, then the evaluate
   stage's metrics on `evaluate.n_samples` samples: FID, precision, recall, label accuracy.
5. determinism: one epoch twice (same bytes?), eager against graph, and under
   torch.use_deterministic_algorithms.
6. export: samples on the GPU against the same generator on the CPU, the ONNX export checked by onnxruntime.
7. study (optional): each `--variant key=value,...` trained and evaluated like the default, time budget allowing.
"""

from __future__ import annotations

import os

# cuBLAS reads this when it first starts: needed for determinism under torch.use_deterministic_algorithms
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import gzip
import hashlib
import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import torch
import typer

from benchmarks.train_speed import timed_steps
from mnist_gan.data.mnist import MNIST_MD5, load_split, verify_raw
from mnist_gan.evaluation.classifier import predict
from mnist_gan.evaluation.fitting import train_classifier
from mnist_gan.evaluation.probe import QualityProbe
from mnist_gan.evaluation.registry import SUMMARY
from mnist_gan.evaluation.registry import summary as metrics_line
from mnist_gan.evaluation.scoring import Evaluation, evaluate_weights
from mnist_gan.gan.build import build_trainer, train_run
from mnist_gan.gan.sampling import generate, load_generator
from mnist_gan.gan.trainer import EpochEnd, Hooks, Trainer
from mnist_gan.runtime import native_bf16, pick_device, resolve_precision, set_cpu_threads
from mnist_gan.settings.configs import Params
from mnist_gan.settings.params import load_params, parse, updated, with_changes

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("speed", "classifier", "full_run", "determinism", "export", "study", "compile")
app = typer.Typer(add_completion=False, help=__doc__)


class Check:
    """The run's record: sections of figures, written as JSON after each one, and lines for the summary."""

    def __init__(self, out: Path, budget_s: float):
        self.out, self.budget_s, self.started = out, budget_s, time.perf_counter()
        self.record: dict = {"command": "python -m benchmarks.gpu_check", "sections": {}}
        self.lines: list[str] = []
        self.graph_ok = True  # False when a CUDA graph failed in the speed section: the later runs stay eager
        out.mkdir(parents=True, exist_ok=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, line: str, summary: bool = False) -> None:
        typer.echo(f"[{self.elapsed():6.1f} s] {line}")
        if summary:
            self.lines.append(line)

    def section(self, name: str, fn, *args) -> object:
        """Run one section; its figures (or its error) go into the record, which is written out at once."""
        self.say(f"== {name}")
        start = time.perf_counter()
        entry: dict = {}
        self.record["sections"][name] = entry
        result = None
        try:
            result = fn(entry, *args)
            entry["status"] = "ok"
        except Exception as e:  # a failed section is a finding: record it and go on
            entry["status"] = "failed"
            entry["error"] = error_line(e)
            entry["traceback"] = traceback.format_exc()[-3000:]
            self.say(f"{name} FAILED: {entry['error']}", summary=True)
            typer.echo(entry["traceback"])
        entry["wall_s"] = round(time.perf_counter() - start, 2)
        self.write()
        return result

    def write(self) -> None:
        self.record["wall_s"] = round(self.elapsed(), 2)
        (self.out / "gpu_check.json").write_text(json.dumps(self.record, indent=2) + "\n")
        (self.out / "gpu_check.txt").write_text("\n".join(self.lines) + "\n")


def error_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- 1. machine -----------------------------------------------------------------------------------------------
def machine(entry: dict, check: Check, device: torch.device) -> None:
    entry.update(
        device=str(device),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        python=platform.python_version(),
        cpu_cores=os.cpu_count(),
        native_bf16=native_bf16(device),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        entry.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
            memory_gib=round(props.total_memory / 2**30, 1),
        )
        smi = shutil.which("nvidia-smi")
        if smi:
            out = subprocess.run(
                [smi, "--query-gpu=driver_version,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True,
                text=True,
            )
            entry["nvidia_smi"] = out.stdout.strip()
        what = f"{props.name} (sm {props.major}.{props.minor}, {entry['memory_gib']} GiB)"
    else:
        what = f"CPU ({torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores)"
    check.say(
        f"machine: {what}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {entry['cudnn']}, "
        f"native bf16: {entry['native_bf16']}",
        summary=True,
    )


# -- data -----------------------------------------------------------------------------------------------------
def raw_root(src: Path, work: Path) -> Path:
    """torchvision's layout (work/MNIST/raw) of the four idx files in `src`, plain or gzipped; MD5s verified."""
    dest = work / "MNIST" / "raw"
    dest.mkdir(parents=True, exist_ok=True)
    for name in MNIST_MD5:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
        elif (src / f"{name}.gz").is_file():
            with gzip.open(src / f"{name}.gz") as f:
                (dest / name).write_bytes(f.read())
    verify_raw(dest)
    return work


class Data:
    """The splits as the normalize stage keeps them: uint8 images (N, 1, 28, 28) and int64 labels."""

    def __init__(self, root: Path, quick: bool):
        self.root = root
        self.train = load_split(root, train=True)
        self.test = load_split(root, train=False)
        if quick:  # a slice: every section runs, in seconds
            self.train = tuple(t[:1024] for t in self.train)
            self.test = tuple(t[:500] for t in self.test)

    @property
    def train_dict(self) -> dict:
        return {"images": self.train[0], "labels": self.train[1]}


# -- 2. speed -------------------------------------------------------------------------------------------------
def default_trainer(
    params: Params, data: Data, device, precision: str, graph: bool, compile_mode: str | None = None, **changes
) -> Trainer:
    train = replace(params.train, precision=precision, log_every=10**9, **changes)
    size = params.normalize.image_size
    return build_trainer(params.gan, train, size, data.train_dict, device, cuda_graph=graph, compile_mode=compile_mode)


def speed(entry: dict, check: Check, params: Params, data: Data, device, quick: bool) -> None:
    steps, warmup, repeats = (4, 2, 1) if quick else (300, 10, 3)
    precisions = ["fp32"] + (["bf16"] if native_bf16(device) else [])
    modes = ["eager", "graph"] if device.type == "cuda" else ["eager"]
    trainers = {(p, m): default_trainer(params, data, device, p, m == "graph") for p in precisions for m in modes}
    runs: dict = {key: [] for key in trainers}
    warm: dict = {}
    for _ in range(repeats):  # interleaved, so that drifting clocks hit every row alike
        for key, trainer in list(trainers.items()):
            try:
                w, rate = timed_steps(trainer, warmup, steps, device)
            except Exception as e:  # a failed row is a finding (a graph that does not capture, say)
                entry.setdefault("errors", {})[" ".join(key)] = error_line(e)
                check.say(f"speed {' '.join(key)} FAILED: {error_line(e)}", summary=True)
                typer.echo(traceback.format_exc()[-2000:])
                del trainers[key], runs[key]
                continue
            warm.setdefault(key, w)
            runs[key].append(rate)
    if device.type == "cuda":  # a graph that failed here: the runs below stay eager
        check.graph_ok = all((p, "graph") in runs for p in precisions)
    rows = {}
    for (p, m), rates in runs.items():
        rate = statistics.median(rates)
        rows[f"{p} {m}"] = {
            "img_s": round(rate),
            "s_per_epoch": round(60000 / rate, 3),
            "repeats": [round(r) for r in rates],
            "first_warmup_s": round(warm[(p, m)], 2),
        }
        check.say(f"speed default {p} {m}: {rate:,.0f} img/s, {60000 / rate:.2f} s per epoch of 60,000")
    entry["default"] = rows
    entry["steps_timed"], entry["repeats"], entry["batch_size"] = steps, repeats, params.train.batch_size
    best = max(rows, key=lambda k: rows[k]["img_s"])
    line = ", ".join(f"{k} {v['img_s']:,}" for k, v in rows.items())
    check.say(f"speed, the default's step (img/s): {line}; best {best}", summary=True)
    for p in precisions:
        if f"{p} graph" in rows and f"{p} eager" in rows:
            entry[f"graph_over_eager_{p}"] = round(rows[f"{p} graph"]["img_s"] / rows[f"{p} eager"]["img_s"], 2)
    for m in modes:
        if f"bf16 {m}" in rows and f"fp32 {m}" in rows:
            entry[f"bf16_over_fp32_{m}"] = round(rows[f"bf16 {m}"]["img_s"] / rows[f"fp32 {m}"]["img_s"], 2)
    del trainers
    seeds_loop(entry, check, params, data, device, quick)


def seeds_loop(entry: dict, check: Check, params: Params, data: Data, device, quick: bool) -> None:
    """The seeds' loop (torchvision dataset, DataLoader, a host sync every step) against this trainer on the same
    networks (unconditional DCGAN, BatchNorm D, bce)."""
    from benchmarks.train_speed import MODELS, reference_loop, seed_networks
    from mnist_gan.settings.recipes import params as recipe_params

    steps = 4 if quick else 200
    cfg = seed_networks("dcgan")[0]
    ref = reference_loop(cfg, data.root, params.train.batch_size, steps, device)
    seeds = updated(recipe_params(MODELS["dcgan"]), batch_size=params.train.batch_size)  # the seeds' networks, ours
    precision = resolve_precision("auto", device)
    ours = {}
    for m in ["eager", "graph"] if device.type == "cuda" and check.graph_ok else ["eager"]:
        trainer = default_trainer(seeds, data, device, precision, m == "graph")
        ours[f"{precision} {m}"] = round(timed_steps(trainer, 4 if quick else 10, steps, device)[1])
    entry["seeds_loop"] = {"reference_img_s": round(ref), "this_trainer_img_s": ours}
    best = max(ours.values())
    entry["seeds_loop"]["speedup"] = round(best / ref, 1)
    check.say(
        f"seeds' loop on this device: {ref:,.0f} img/s (fp32, DataLoader); this trainer on the same networks: "
        + ", ".join(f"{k} {v:,}" for k, v in ours.items())
        + f" img/s: x{best / ref:.1f}",
        summary=True,
    )


def compiled(entry: dict, check: Check, params: Params, data: Data, device, quick: bool) -> None:
    """torch.compile of G and D (params.yaml `compile: true`: the default mode), and mode "reduce-overhead"
    (CUDA graphs through torch.compile), each timed like the rest: compile time apart."""
    precision = resolve_precision("auto", device)
    steps = 4 if quick else 300
    modes = ["default"] + (["reduce-overhead"] if device.type == "cuda" else [])
    for mode in modes:
        if check.left() < 120 and not quick:
            entry[mode] = "skipped: time budget"
            continue
        torch._dynamo.reset()
        trainer = default_trainer(params, data, device, precision, graph=False, compile_mode=mode)
        try:
            warm, rate = timed_steps(trainer, 4 if quick else 10, steps, device)
        except Exception as e:
            entry[mode] = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"}
            check.say(f"compile {mode}: failed: {entry[mode]['error']}", summary=True)
            continue
        entry[mode] = {"img_s": round(rate), "compile_and_warmup_s": round(warm, 1), "precision": precision}
        check.say(
            f"compile {mode} ({precision}): {rate:,.0f} img/s after {warm:.0f} s of compile and warm-up", summary=True
        )


# -- 3. classifier --------------------------------------------------------------------------------------------
def classifier(entry: dict, check: Check, params: Params, data: Data, device, quick: bool):
    cfg = replace(params.classifier, precision=resolve_precision(params.classifier.precision, device))
    if quick:
        cfg = replace(cfg, epochs=1)
    sync(device)
    t = time.perf_counter()
    model = train_classifier(*data.train, cfg, device)
    sync(device)
    took = time.perf_counter() - t
    _, probs = predict(model, data.test[0])
    accuracy = float((probs.argmax(1) == data.test[1]).double().mean())
    entry.update(test_accuracy=round(accuracy, 4), train_s=round(took, 1), epochs=cfg.epochs, precision=cfg.precision)
    check.say(f"classifier: test accuracy {accuracy:.4f} after {cfg.epochs} epochs in {took:.1f} s", summary=True)
    return model


# -- 4. the full default run ----------------------------------------------------------------------------------
class Record(Hooks):
    """Per-epoch figures of a run, printed as they come."""

    def __init__(self, check: Check, name: str):
        self.check, self.name, self.epochs, self.last_grid = check, name, [], None
        self.last = time.perf_counter()

    def start(self, start) -> None:
        self.check.say(f"{self.name}: {start.what}, {start.total} steps")
        self.last = time.perf_counter()

    def epoch(self, end: EpochEnd) -> None:
        now = time.perf_counter()
        row = {
            "epoch": end.epoch,
            "img_s": round(end.images_per_s),
            "wall_s": round(now - self.last, 2),
            "fid_probe": None if end.fid is None else round(end.fid, 2),
            **{k: round(v, 4) for k, v in end.means.items()},
        }
        self.epochs.append(row)
        self.last_grid, self.nrow = end.grid, end.nrow
        fid = "" if end.fid is None else f", probe FID {end.fid:.2f}"
        self.check.say(
            f"{self.name} epoch {end.epoch}/{end.epochs}: {end.images_per_s:,.0f} img/s, {row['wall_s']:.2f} s{fid}"
        )
        self.last = now


def train_and_score(
    check: Check, name: str, params: Params, data: Data, device, clf, work: Path, quick: bool
) -> tuple[dict, Path, Record, Evaluation]:
    """Train `params` as the train stage would (graph where it can), then score it as the evaluate stage does."""
    train = params.train
    if quick:
        train = replace(train, epochs=1, quality_samples=200, log_every=4)
    folder = work / name
    probe = QualityProbe(clf, data.test[0], train.quality_samples, train.seed) if train.quality_samples else None
    hooks = Record(check, name)
    per_step = train.batch_size * train.d_steps
    sync(device)
    t = time.perf_counter()
    steps = 8 if quick else None
    trainer = train_run(
        params.gan,
        train,
        params.normalize.image_size,
        data.train_dict,
        folder,
        folder / "checkpoint.pt",
        device,
        cuda_graph=check.graph_ok,
        probe=probe,
        hooks=hooks,
        max_steps=steps,
    )
    sync(device)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    weights, n = folder / "generator.pt", 200 if quick else None
    result = evaluate_weights(params.evaluate, params.two_sample, weights, clf, data.train, data.test, n=n)
    eval_s = time.perf_counter() - t
    n = result.samples.shape[0]
    g, r = result.metrics["generated"], result.metrics["real_floor"]
    keys = (*SUMMARY, "two_sample_se", "classifier_score", "per_digit_fid_max")
    summary = {
        "describe": trainer.describe(),
        "step": "cuda graph" if trainer.graphed is not None else f"eager ({trainer.eager_why})",
        "fit_s": round(fit_s, 1),
        "train_steps_s": round(sum(trainer.steps_per_epoch * per_step / e["img_s"] for e in hooks.epochs), 1),
        "evaluate_s": round(eval_s, 1),
        "n_samples": n,
        "generated": {k: g.get(k) for k in keys},
        "real_floor": {k: r.get(k) for k in keys},
        "epochs": hooks.epochs,
    }
    return summary, folder / "generator.pt", hooks, result


def full_run(entry: dict, check: Check, params: Params, data: Data, device, clf, work: Path, quick: bool):
    from mnist_gan.outputs.images import image_grid, labelled_grid, save_png

    summary, weights, hooks, result = train_and_score(check, "default", params, data, device, clf, work, quick)
    entry.update(summary)
    if hooks.last_grid is not None:
        save_png(image_grid(hooks.last_grid, nrow=hooks.nrow), check.out / "gpu_fixed_noise_last_epoch.png")
    if result.labels is not None:
        save_png(labelled_grid(result.samples, result.labels), check.out / "gpu_per_class.png")
    epochs = summary["epochs"]
    fids = ", ".join(f"{e['fid_probe']}" for e in epochs if e["fid_probe"] is not None)
    check.say(
        f"full run ({summary['step']}): {len(epochs)} epochs in {summary['fit_s']} s "
        f"(the training steps alone {summary['train_steps_s']} s; probe FID per epoch: {fids})",
        summary=True,
    )
    check.say(
        f"evaluate ({summary['n_samples']} samples, {summary['evaluate_s']} s): "
        + metrics_line(summary["generated"], summary["real_floor"]),
        summary=True,
    )
    return weights


# -- 5. determinism -------------------------------------------------------------------------------------------
def weights_digest(trainer: Trainer) -> str:
    h = hashlib.sha256()
    for model in (trainer.g, trainer.d, *([trainer.ema.model] if trainer.ema is not None else [])):
        for k, v in model.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def one_epoch(params: Params, data: Data, device, graph: bool, steps: int | None) -> str:
    precision = resolve_precision(params.train.precision, device)
    trainer = default_trainer(params, data, device, precision, graph)
    assert (trainer.graphed is not None) == graph, trainer.eager_why
    trainer.run_epoch(1, 0, max_steps=steps)
    sync(device)
    return weights_digest(trainer)


def determinism(entry: dict, check: Check, params: Params, data: Data, device, quick: bool) -> None:
    steps = 6 if quick else None  # None: one whole epoch
    graph = device.type == "cuda" and check.graph_ok
    runs = {"first": one_epoch(params, data, device, graph, steps)}
    runs["second"] = one_epoch(params, data, device, graph, steps)
    if graph:
        runs["eager"] = one_epoch(params, data, device, False, steps)
    try:
        torch.use_deterministic_algorithms(True)
        runs["deterministic"] = one_epoch(params, data, device, graph, steps)
        runs["deterministic_again"] = one_epoch(params, data, device, graph, steps)
    except RuntimeError as e:  # an op without a deterministic implementation says which
        entry["deterministic_error"] = str(e).strip().splitlines()[0][:300]
    finally:
        torch.use_deterministic_algorithms(False)
    entry["digests"] = runs
    entry["steps"] = steps or "one epoch"
    entry["repeatable"] = runs["first"] == runs["second"]
    if "eager" in runs:
        entry["graph_equals_eager"] = runs["eager"] == runs["first"]
    if "deterministic" in runs:
        entry["repeatable_deterministic"] = runs["deterministic"] == runs["deterministic_again"]
        entry["deterministic_equals_default"] = runs["deterministic"] == runs["first"]
    check.say(
        "determinism (G, D and EMA weights after "
        + (f"{steps} steps" if steps else "one epoch")
        + "): "
        + ", ".join(f"{k} {v}" for k, v in entry.items() if isinstance(v, bool))
        + (f"; deterministic mode refused: {entry['deterministic_error']}" if "deterministic_error" in entry else ""),
        summary=True,
    )


# -- 6. sampling and export -----------------------------------------------------------------------------------
def export(entry: dict, check: Check, weights: Path, device) -> None:
    from mnist_gan.outputs.export import check_onnx, export_onnx, load_safetensors, metadata, save_safetensors
    from mnist_gan.storage import load_torch

    on_device = load_generator(weights, device)
    on_cpu = load_generator(weights, "cpu")
    a, b = generate(on_device, 256, seed=0), generate(on_cpu, 256, seed=0)
    entry["device_vs_cpu_max_abs"] = float((a - b).abs().max())
    meta = metadata(load_torch(weights, "generator weights"), None)
    folder = weights.parent
    save_safetensors(on_cpu, folder / "generator.safetensors", meta)
    reloaded = load_safetensors(folder / "generator.safetensors")
    entry["safetensors_bitwise"] = bool(generate(reloaded, 64, seed=0).equal(generate(on_cpu, 64, seed=0)))
    t = time.perf_counter()
    export_onnx(on_cpu, folder / "generator.onnx", meta)
    entry["onnx_export_s"] = round(time.perf_counter() - t, 1)
    entry["onnxruntime_vs_torch_cpu_max_abs"] = check_onnx(folder / "generator.onnx", load_generator(weights, "cpu"))
    check.say(
        f"export: samples on {device.type} vs the same generator on the CPU max |diff| "
        f"{entry['device_vs_cpu_max_abs']:.2g}; safetensors reload bitwise: {entry['safetensors_bitwise']}; "
        f"ONNX (onnxruntime, CPU) vs torch max |diff| {entry['onnxruntime_vs_torch_cpu_max_abs']:.2g}",
        summary=True,
    )


# -- 7. study -------------------------------------------------------------------------------------------------
def parse_variant(params: Params, text: str) -> tuple[str, Params]:
    """ "beta1=0.0,beta2=0.99" -> the params with those keys changed, validated as params.yaml is."""
    changed = with_changes(params.as_dict(), [part for part in text.split(",") if part])
    return text, parse(changed, f"--variant {text}")


def study(entry: dict, check: Check, params: Params, variants: list[str], data, device, clf, work, quick) -> None:
    per_run = None
    for i, text in enumerate(variants):
        if per_run is not None and check.left() < per_run * 1.2 and not quick:
            entry[text] = "skipped: time budget"
            check.say(f"study {text}: skipped (time budget)", summary=True)
            continue
        name, changed = parse_variant(params, text)
        t = time.perf_counter()
        summary, _, _, _ = train_and_score(check, f"variant{i}", changed, data, device, clf, work, quick)
        per_run = time.perf_counter() - t
        entry[name] = summary
        check.write()
        check.say(f"study {name}: {metrics_line(summary['generated'])} ({per_run:.0f} s)", summary=True)


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="Folder for gpu_check.json, gpu_check.txt and the grids.")],
    device: Annotated[str, typer.Option(help="auto | cuda | cpu (a CPU run only proves the check works).")] = "auto",
    raw: Annotated[
        Path, typer.Option(help="A folder holding the four MNIST idx files, plain or gzipped (as first published).")
    ] = Path("data/raw/MNIST/raw"),
    quick: Annotated[bool, typer.Option(help="A slice of the data and a few steps per section (CI).")] = False,
    budget_s: Annotated[float, typer.Option(help="Optional sections (compile, study) stop past this.")] = 420.0,
    sections: Annotated[
        str, typer.Option(help="Comma-separated sections to run (machine and data always run).")
    ] = ",".join(SECTIONS),
    variant: Annotated[
        list[str] | None, typer.Option(help="key=value[,key=value] trained and scored after the default.")
    ] = None,
):
    """Measure the GPU path: speed, a full default run and its metrics, determinism, sampling and export."""
    unknown = set(sections.split(",")) - set(SECTIONS)
    if unknown:
        raise typer.BadParameter(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    check = Check(out, budget_s)
    dev = pick_device(device)
    if dev.type == "cpu":
        set_cpu_threads(None)
    params = load_params(ROOT / "params.yaml")
    if quick:  # small batches, few BatchNorm-recalibration batches, a two-sample test of 3 epochs: seconds on a CPU
        params = updated(params, batch_size=32, ema_bn_batches=2, **{"two_sample.max_epochs": 3})
    check.record.update(quick=quick, params_digest=hashlib.sha256((ROOT / "params.yaml").read_bytes()).hexdigest()[:16])
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        check.section("machine", machine, check, dev)
        data = check.section("data", lambda e: Data(raw_root(raw, work / "raw"), quick))
        if data is None:
            raise typer.Exit(1)
        chosen = set(sections.split(","))
        if "speed" in chosen:
            check.section("speed", speed, check, params, data, dev, quick)
        clf = weights = None
        if chosen & {"classifier", "full_run", "export", "study"}:  # the metrics need it
            clf = check.section("classifier", classifier, check, params, data, dev, quick)
        if clf is not None and chosen & {"full_run", "export"}:
            weights = check.section("full_run", full_run, check, params, data, dev, clf, work / "runs", quick)
        if "determinism" in chosen:
            check.section("determinism", determinism, check, params, data, dev, quick)
        if weights is not None and "export" in chosen:
            check.section("export", export, check, weights, dev)
        if variant and clf is not None and "study" in chosen:
            check.section("study", study, check, params, variant, data, dev, clf, work / "runs", quick)
        if "compile" in chosen and not quick:  # a minute of compiling even for these networks: not on a CPU test
            check.section("compile", compiled, check, params, data, dev, quick)
    failed = [k for k, v in check.record["sections"].items() if v.get("status") == "failed"]
    check.say(f"done in {check.elapsed():.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""), summary=True)
    check.write()
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
