"""The digit server: FastAPI + uvicorn over the exported ONNX generator, with onnxruntime and no torch.

    mnist-gan serve --model models/generator.onnx            # http://127.0.0.1:8000

GET /generate.png?digit=7&n=16&seed=3  a PNG grid; the same query gives the same bytes. Without `digit` a
                                       conditional model draws a row per digit (n each), another model n images.
GET /                                  a page to pick digit, count and seed (offline: nothing from the internet)
GET /healthz                           {"status": "ok"}
GET /model                             the model card's metadata and metrics

Every bad request gets a 4xx and {"error": "<one line>"}. A request names no file and loads nothing: the one
model is read at start-up, and `n` is capped, so no request can make the server allocate without bound.
Imports only numpy, pillow, onnxruntime, fastapi and uvicorn (see README "Serve": the slim install).
"""

from __future__ import annotations

import io
import json
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnist_gan.errors import PipelineError

MAX_N = 64  # images per request (per digit row when a conditional model draws all ten): 640 at most
MAX_SEED = 2**32 - 1
PAD = 2  # pixels between grid cells, as torchvision's make_grid


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


class DigitModel:
    """The ONNX generator and what its metadata says about it (kind, latent length, cluster shares)."""

    def __init__(self, path: Path, threads: int = 1):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # requests run side by side in threads; one core each
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if "config" not in self.meta or "latent" not in self.meta:
            raise ValueError(f"{path} is not an mnist-gan export (no generator metadata); run the export stage")
        self.config = json.loads(self.meta["config"])
        self.kind = self.meta.get("kind", "unconditional")
        self.latent = int(self.meta["latent"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        prior = self.config.get("class_prior")
        self.prior = None if prior is None else np.asarray(prior, dtype=np.float64) / np.sum(prior)

    def draw(self, n: int, seed: int, digits: np.ndarray | None) -> np.ndarray:
        """Images (n, 1, H, W) in [-1, 1]: z from `seed` (numpy's PCG64), then cluster ids if self-conditioned."""
        rng = np.random.default_rng(seed)
        feeds = {"z": rng.standard_normal((n, self.latent), dtype=np.float32)}
        if "y" in self.inputs:
            feeds["y"] = digits.astype(np.int64) if digits is not None else rng.choice(len(self.prior), n, p=self.prior)
        return self.session.run(["images"], feeds)[0]

    def info(self) -> dict:
        metrics = json.loads(self.meta.get("metrics", "null"))
        return {
            "kind": self.kind,
            "model": self.config.get("model"),
            "latent": self.latent,
            "image_size": self.config.get("image_size"),
            "digits": self.kind == "conditional",
            "params": json.loads(self.meta.get("params", "null")),
            "params_digest": self.meta.get("params_digest"),
            "metrics": metrics,
            "max_n": MAX_N,
        }


def grid_png(images: np.ndarray, nrow: int) -> bytes:
    """A grid like torchvision's make_grid (black padding of 2) as PNG bytes; deterministic."""
    n, _, h, w = images.shape
    rows = math.ceil(n / nrow)
    canvas = np.zeros((rows * (h + PAD) + PAD, nrow * (w + PAD) + PAD), dtype=np.uint8)
    pixels = np.clip(np.rint((images[:, 0] + 1) * 127.5), 0, 255).astype(np.uint8)
    for i, image in enumerate(pixels):
        r, c = divmod(i, nrow)
        canvas[PAD + r * (h + PAD) : PAD + r * (h + PAD) + h, PAD + c * (w + PAD) : PAD + c * (w + PAD) + w] = image
    buffer = io.BytesIO()
    Image.fromarray(canvas, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


INTEGER = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes "²" and "①", which int() refuses


def _integer(name: str, raw: str | None, lo: int, hi: int, default: int | None = None) -> int:
    """A query number: an optional minus and ASCII digits, within [lo, hi]; anything else is a 400."""
    if raw is None or raw == "":
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    if not INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer from {lo} to {hi}, got {raw[:40]!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be an integer from {lo} to {hi}, got {value}")
    return value


def create_app(model_path: Path, threads: int = 1) -> FastAPI:
    model = DigitModel(model_path, threads)
    app = FastAPI(title="mnist-gan digit server", docs_url=None, redoc_url=None, openapi_url=None)
    page = resources.files("mnist_gan.serving").joinpath("page.html").read_text()

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, e: BadRequest):
        return JSONResponse({"error": e.message}, status_code=e.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        message = f"no such path: {request.url.path}" if e.status_code == 404 else str(e.detail)
        return JSONResponse({"error": message}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {"loc": ["request"], "msg": "invalid"}
        return JSONResponse({"error": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/model")
    def info() -> dict:
        return model.info()

    @app.get("/generate.png")
    def generate(request: Request, digit: str | None = None, n: str | None = None, seed: str | None = None):
        unknown = sorted(set(request.query_params) - {"digit", "n", "seed"})
        if unknown:
            raise BadRequest(f"unknown query parameter {unknown[0]!r}; allowed: digit, n, seed")
        count = _integer("n", n, 1, MAX_N, default=16)
        noise_seed = _integer("seed", seed, 0, MAX_SEED, default=0)
        if digit not in (None, "") and model.kind != "conditional":
            raise BadRequest(f"this model is {model.kind}: it cannot be asked for a digit; leave out digit")
        if digit not in (None, ""):
            d = _integer("digit", digit, 0, 9)
            images, nrow = model.draw(count, noise_seed, np.full(count, d)), math.ceil(math.sqrt(count))
        elif model.kind == "conditional":  # a row per digit, `count` images each
            images, nrow = model.draw(10 * count, noise_seed, np.repeat(np.arange(10), count)), count
        else:
            images, nrow = model.draw(count, noise_seed, None), math.ceil(math.sqrt(count))
        return Response(
            grid_png(images, nrow), media_type="image/png", headers={"Cache-Control": "public, max-age=86400"}
        )

    return app


class ServeError(PipelineError):
    """The model file cannot be served (missing, or not an export onnxruntime can run)."""

    exit_code = 2


def run_server(model: Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, threads: int = 1) -> None:
    """`mnist-gan serve` (cli.py): check the model in one line, then run uvicorn until Ctrl-C."""
    if not model.is_file():
        raise ServeError(f"{model} does not exist; run `dvc repro export` or `dvc pull {model}`")
    try:
        DigitModel(model, threads)  # fail here, in one line, rather than inside a worker
    except Exception as e:  # onnxruntime's own errors for a corrupt file name no type we could catch narrowly
        raise ServeError(f"cannot load {model}: {str(e).splitlines()[0][:200]}") from None
    import uvicorn

    if workers > 1:
        import os

        os.environ["MNIST_GAN_SERVE_MODEL"], os.environ["MNIST_GAN_SERVE_THREADS"] = str(model), str(threads)
        uvicorn.run(
            "mnist_gan.serving.server:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        uvicorn.run(create_app(model, threads), host=host, port=port, log_level="warning")


def app_from_env() -> FastAPI:
    """For `--workers N`: each uvicorn worker builds its own app (and onnxruntime session)."""
    import os

    return create_app(Path(os.environ["MNIST_GAN_SERVE_MODEL"]), int(os.environ.get("MNIST_GAN_SERVE_THREADS", "1")))
