"""The digit server: every endpoint and every bad input (FastAPI's TestClient), torch-free, a real uvicorn
process, the page clicked in headless Chromium, and a short locust run."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_gan.gan.sampling import load_generator
from mnist_gan.outputs.export import export_onnx, metadata
from mnist_gan.serving.server import MAX_N, create_app
from mnist_gan.storage import save_torch
from tests.conftest import CHROMIUM, PY, ROOT, free_port, run
from tests.test_export import KINDS, METRICS, trained_like

CELL = 28 + 2  # one image and its padding in a grid


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory) -> dict[str, Path]:
    """kind -> an exported ONNX generator of that kind (random weights)."""
    out = tmp_path_factory.mktemp("onnx")
    paths = {}
    for kind in KINDS:
        weights = trained_like(kind)
        save_torch(weights, out / f"{kind}.pt")
        export_onnx(load_generator(out / f"{kind}.pt"), out / f"{kind}.onnx", metadata(weights, METRICS))
        paths[kind] = out / f"{kind}.onnx"
    return paths


@pytest.fixture(scope="module")
def clients(onnx_models) -> dict[str, TestClient]:
    return {kind: TestClient(create_app(path)) for kind, path in onnx_models.items()}


def png(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_health_and_model(clients):
    for kind, client in clients.items():
        assert client.get("/healthz").json() == {"status": "ok"}
        info = client.get("/model").json()
        assert info["kind"] == kind and info["digits"] == (kind == "conditional") and info["latent"] == 100
        assert info["metrics"]["generated"]["fid"] == 12.5 and info["params_digest"] == "0123456789abcdef"


def test_page_is_offline(clients):
    page = clients["conditional"].get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text and "<script src" not in page.text
    assert 'id="draw"' in page.text


def test_same_query_same_bytes_and_grid_shapes(clients):
    conditional = clients["conditional"]
    first = conditional.get("/generate.png?digit=7&n=16&seed=3")
    assert first.content == conditional.get("/generate.png?digit=7&n=16&seed=3").content
    assert first.content != conditional.get("/generate.png?digit=7&n=16&seed=4").content
    assert first.content != conditional.get("/generate.png?digit=1&n=16&seed=3").content
    assert png(first).size == (4 * CELL + 2, 4 * CELL + 2)  # 16 images: 4 x 4
    rows = png(conditional.get("/generate.png?n=5&seed=1"))  # no digit: a row per digit, 5 each
    assert rows.size == (5 * CELL + 2, 10 * CELL + 2)
    for kind in ("unconditional", "self-conditioned"):
        client = clients[kind]
        image = png(client.get("/generate.png?n=9&seed=2"))
        assert image.size == (3 * CELL + 2, 3 * CELL + 2)
        assert client.get("/generate.png?n=9&seed=2").content == client.get("/generate.png?n=9&seed=2").content
    default = png(clients["unconditional"].get("/generate.png"))  # n = 16, seed = 0
    assert default.size == (4 * CELL + 2, 4 * CELL + 2)


@pytest.mark.parametrize(
    ("kind", "query", "status", "message"),
    [
        ("conditional", "digit=10", 400, "digit must be an integer from 0 to 9, got 10"),
        ("conditional", "digit=-1", 400, "digit must be an integer from 0 to 9, got -1"),
        ("conditional", "digit=seven", 400, "digit must be an integer from 0 to 9, got 'seven'"),
        ("conditional", "digit=7.5", 400, "digit must be an integer"),
        ("unconditional", "digit=7", 400, "this model is unconditional: it cannot be asked for a digit"),
        ("self-conditioned", "digit=7", 400, "this model is self-conditioned: it cannot be asked for a digit"),
        ("conditional", "n=0", 400, f"n must be an integer from 1 to {MAX_N}, got 0"),
        ("conditional", f"n={MAX_N + 1}", 400, f"n must be an integer from 1 to {MAX_N}, got {MAX_N + 1}"),
        ("conditional", "n=99999999999999999999999", 400, "n must be an integer"),
        ("conditional", "n=-3", 400, "n must be an integer"),
        ("conditional", "seed=-1", 400, "seed must be an integer from 0 to 4294967295, got -1"),
        ("conditional", "seed=4294967296", 400, "seed must be an integer from 0 to 4294967295"),
        ("conditional", "seed=abc", 400, "seed must be an integer"),
        ("conditional", "file=/etc/passwd", 400, "unknown query parameter 'file'"),
        # Unicode digits: str.isdigit() says yes, int() says no (these answered 500 before)
        ("conditional", "digit=²", 400, "digit must be an integer from 0 to 9, got '²'"),
        ("conditional", "digit=①", 400, "digit must be an integer from 0 to 9, got '①'"),
        ("conditional", "n=²", 400, "n must be an integer"),
        ("conditional", "seed=¹", 400, "seed must be an integer"),
        ("conditional", "n=%207", 400, "n must be an integer"),  # " 7": no spaces either
    ],
)
def test_bad_input_is_a_4xx_with_one_message(clients, kind, query, status, message):
    response = clients[kind].get(f"/generate.png?{query}")
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["error"] and message in body["error"] and "\n" not in body["error"]


NUMBERS = st.text(max_size=12) | st.integers(-3, 80).map(str) | st.sampled_from(["²", "①", "٣", "7.0", " 7", "+7"])


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_any_query_text_gets_a_2xx_or_a_4xx_never_a_5xx(clients, data):
    """Arbitrary text (any Unicode) for every query parameter, known or not: the server answers 200 with a PNG
    or a 4xx with its one-line JSON error, never a 5xx (TestClient raises on an unhandled error, too)."""
    kind = data.draw(st.sampled_from(list(clients)))
    names = data.draw(st.lists(st.sampled_from(["digit", "n", "seed", "other"]), max_size=4, unique=True))
    params = {name: data.draw(NUMBERS, label=name) for name in names}
    response = clients[kind].get("/generate.png", params=params)
    assert response.status_code == 200 or 400 <= response.status_code < 500, (params, response.text)
    if response.status_code == 200:
        assert response.headers["content-type"] == "image/png"
    else:
        assert list(response.json()) == ["error"] and "\n" not in response.json()["error"]


def test_unknown_paths_and_methods(clients):
    client = clients["conditional"]
    for path in ("/nope", "/generate.png/../../etc/passwd", "/models/generator.onnx", "/static/serve.py"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"].startswith("no such path")
    response = client.post("/generate.png")
    assert response.status_code == 405 and list(response.json()) == ["error"]


def test_the_server_imports_no_torch(onnx_models):
    """What the slim install runs: torch made unimportable, the app serves a grid."""
    code = f"""
import sys
sys.modules['torch'] = None  # any `import torch` now fails
from fastapi.testclient import TestClient
from mnist_gan.serving.server import create_app
client = TestClient(create_app({str(onnx_models["conditional"])!r}))
assert client.get('/generate.png?digit=3&n=4').status_code == 200
assert not any(name == 'torch' or name.startswith('torch.') for name in sys.modules if sys.modules[name] is not None)
print('ok')
"""
    done = run([sys.executable, "-c", code], check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_file_that_is_no_export_is_refused(tmp_path):
    bad = tmp_path / "g.onnx"
    bad.write_bytes(b"garbage")
    done = run(PY + ["mnist_gan.cli", "serve", "--model", bad], check=False)
    assert done.returncode == 2 and done.stderr.startswith("error: cannot load") and done.stderr.count("\n") == 1
    done = run(PY + ["mnist_gan.cli", "serve", "--model", tmp_path / "none.onnx"], check=False)
    assert done.returncode == 2 and "does not exist" in done.stderr and done.stderr.count("\n") == 1


def start_server(
    model: Path, cwd: Path = ROOT, command: Path | None = None, env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    """`mnist-gan serve` as a real uvicorn process on 127.0.0.1 (`command`: another environment's `mnist-gan`);
    returns it once /healthz answers."""
    import urllib.request

    port = free_port()
    mnist_gan = command or Path(sys.executable).parent / "mnist-gan"
    proc = subprocess.Popen(
        [str(mnist_gan), "serve", "--model", str(model), "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if json.load(r) == {"status": "ok"}:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("the server did not answer /healthz within 60 s")


@pytest.fixture
def server(onnx_models):
    proc, url = start_server(onnx_models["conditional"])
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
def test_server_binds_loopback_by_default(server):
    port = int(server.rsplit(":", 1)[1])
    with socket.socket() as s:  # the port answers on 127.0.0.1 ...
        assert s.connect_ex(("127.0.0.1", port)) == 0
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in addresses:  # ... and on no other address of this machine
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((address, port)) != 0, address


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by `make test` (make browser)")
def test_page_in_chromium_draws_the_asked_digit(server, tmp_path):
    """The page draws a first grid on load; then pick 7, 9 images, seed 5, click Draw: that grid appears, is the
    API's own bytes, and nothing failed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        failed, external = [], []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        page.on("request", lambda r: external.append(r.url) if not r.url.startswith(server) else None)
        page.goto(server + "/")
        page.wait_for_function("document.getElementById('about').textContent.includes('conditional')")
        # the first grid, drawn on load (no digit asked: a row of 16 per digit), before the form changes: a Draw
        # while it still loads would rightly abort its request
        page.wait_for_function("document.getElementById('status').textContent === 'Drawn: n=16&seed=0'")
        assert page.evaluate("document.getElementById('grid').naturalWidth") == 16 * CELL + 2
        page.select_option("#digit", "7")
        page.fill("#n", "9")
        page.fill("#seed", "5")
        page.click("#draw")
        drawn = "document.getElementById('status').textContent.startsWith('Drawn: ') && "
        page.wait_for_function(drawn + "document.getElementById('grid').src.includes('n=9')", timeout=30_000)
        assert page.evaluate("document.getElementById('grid').naturalWidth") == 3 * CELL + 2
        assert "digit=7" in page.evaluate("document.getElementById('grid').src")
        assert page.inner_text("#status").startswith("Drawn:")
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert not failed and not external, (failed, external)


@pytest.mark.slow
def test_locust_smoke(server, tmp_path):
    """The load benchmark's own locustfile for 40 requests of 5 users (the figures in docs/serving.md are a 60 s
    run): a count, not a duration (`-t` only caps a server that stops answering)."""
    done = run(
        [
            "locust",
            "-f",
            ROOT / "benchmarks" / "locustfile.py",
            "--headless",
            "-u",
            "5",
            "-r",
            "5",
            "-t",
            "100s",
            "--host",
            server,
            "--json-file",
            tmp_path / "stats",
        ],
        tmp_path,
        check=False,
        timeout=120,
        env={"LOCUST_WAIT_MIN": "0.05", "LOCUST_WAIT_MAX": "0.1", "LOCUST_STOP_AFTER": "40"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    stats = {s["name"]: s for s in json.loads((tmp_path / "stats.json").read_text())}  # the final stats
    grids = stats["/generate.png"]
    assert grids["num_requests"] >= 35 and grids["num_failures"] == 0, grids  # 40 less the 5 users' GET /model


@pytest.mark.slow
def test_slim_install_serves_without_torch(onnx_models, tmp_path):
    """The slim install of docs/serving.md for real: a new venv from requirements-serve.txt, this package without its
    dependencies, and `mnist-gan serve` answering; torch is not installed there at all."""
    import urllib.request

    venv = tmp_path / "slim"
    run([sys.executable, "-m", "venv", venv])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for args in (["-r", str(ROOT / "requirements-serve.txt")], ["--no-deps", "-e", str(ROOT)]):
        run(pip + args, timeout=600)
    probe = run([venv / "bin" / "python", "-c", "import torch"], check=False)
    assert probe.returncode != 0, "torch is importable in the slim environment"
    port = free_port()
    proc = subprocess.Popen(
        [str(venv / "bin" / "mnist-gan"), "serve", "--model", str(onnx_models["conditional"]), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/generate.png?digit=2&n=4", timeout=2) as r:
                    assert r.status == 200 and r.read()[:4] == b"\x89PNG"
                    break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(10)
