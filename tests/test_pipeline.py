"""The DAG itself: dvc.yaml and params.yaml agree, and a real `dvc repro` / `dvc exp run` in a temp repo."""

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mnist_gan.settings.configs import CONFIGS, TOP, fields_of
from mnist_gan.settings.params import FIELDS, SECTIONS
from tests.conftest import DVC, ROOMS, ROOT, all_modules, imported_modules, library_modules, run


def dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_each_stage_runs_its_own_script_listed_in_its_deps():
    for name, stage in dvc_yaml()["stages"].items():
        script = f"stages/{name}.py"
        assert (ROOT / script).is_file(), name
        assert f"python -m stages.{name} " in stage["cmd"], name
        assert script in stage["deps"], name


def test_every_listed_param_exists_and_library_deps_exist():
    for name, stage in dvc_yaml()["stages"].items():
        for entry in stage.get("params", []):
            if isinstance(entry, dict):  # {params.yaml: null} = the whole file
                continue
            assert entry in FIELDS or entry in SECTIONS, f"{name}: unknown param {entry}"
        for dep in stage["deps"]:
            if dep.startswith(("src/", "stages/")):
                assert (ROOT / dep).is_file(), f"{name}: missing dep {dep}"


# modules that only validate params and report errors: a stage imports them, but params are tracked by DVC's own
# `params:` and an error message changes no output, so they are neither followed nor listed as deps
NOT_DEPS = {"mnist_gan.stage", "mnist_gan.settings.params", "mnist_gan.errors"}


def library_closure(source: str) -> set[str]:
    """The files of the package's modules a stage runs: those it imports, directly or through each other
    (packages' empty __init__ files left out)."""
    modules = library_modules()
    seen, todo = set(), list(imported_modules(source))
    while todo:
        name = todo.pop()
        if name not in seen and name not in NOT_DEPS:
            seen.add(name)
            todo += imported_modules(modules[name].read_text())
    return {modules[m].relative_to(ROOT).as_posix() for m in seen if modules[m].name != "__init__.py"}


def test_stage_deps_cover_every_library_module_the_stage_runs():
    for name, stage in dvc_yaml()["stages"].items():
        needed = library_closure((ROOT / f"stages/{name}.py").read_text())
        listed = {d for d in stage["deps"] if d.startswith("src/")}
        assert needed <= listed, f"{name}: add {sorted(needed - listed)} to its deps"
        assert listed <= needed, f"{name}: {sorted(listed - needed)} is listed but never imported"


def test_repro_produces_every_output(small_repo):  # the fast tier's one real (tiny) `dvc repro`
    repo, out = small_repo
    for stage in ("fetch", "normalize", "train", "sample", "classifier", "two_sample", "evaluate", "export", "report"):
        assert f"Running stage '{stage}'" in out
    generator = torch.load(repo / "models" / "generator.pt", weights_only=True)
    assert generator["config"]["model"] == "dcgan"
    assert (repo / "results" / "sample" / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((repo / "results" / "train" / "metrics.json").read_text())["epochs"] == 1
    # a 1-epoch classifier on 4,000 images must clear an honest 90% (the full run's bar, 99%, is the stage's own)
    assert json.loads((repo / "results" / "classifier" / "metrics.json").read_text())["test_accuracy"] >= 0.9
    scores = json.loads((repo / "results" / "evaluate" / "metrics.json").read_text())
    assert scores["real_floor"]["fid"] < scores["generated"]["fid"]  # 8 training steps are far from real
    assert scores["real_floor"]["classes_covered"] == 10
    assert 0.0 <= scores["generated"]["two_sample_accuracy"] <= 1.0
    assert (
        scores["real_floor"]["two_sample_accuracy"]
        == json.loads((repo / "results" / "two_sample" / "metrics.json").read_text())["two_sample_accuracy"]
    )  # the two_sample stage's floor, not recomputed
    for image in ("per_class.png", "nearest.png", "least_real.png"):
        assert (repo / "results" / "evaluate" / image).is_file()
    html = (repo / "reports" / "report.html").read_text()
    assert "data:image/png;base64," in html and "data:image/gif;base64," in html
    assert "http://" not in html and "https://" not in html
    assert "![" in (repo / "reports" / "report.md").read_text()
    for name in ("generator.safetensors", "generator.onnx", "MODEL_CARD.md", "samples.png"):
        assert (repo / "models" / name).is_file(), name
    assert "up to date" in run(DVC + ["status"], repo).output


@pytest.mark.slow
def test_exp_run_reruns_only_what_depends_on_lr_and_repro_is_then_a_noop(experiments):
    repo, out = experiments  # `dvc exp run -n slow -S lr=0.0001` on the reproduced baseline (the committed lr)
    for stage in ("fetch", "normalize", "classifier", "two_sample"):
        assert f"Stage '{stage}' didn't change, skipping" in out, out
        assert f"Running stage '{stage}'" not in out
    for stage in ("train", "sample", "evaluate", "export", "report"):
        assert f"Running stage '{stage}'" in out, out
    assert yaml.safe_load((repo / "params.yaml").read_text())["lr"] == 0.0001
    default_lr = yaml.safe_load(run(["git", "show", "HEAD:params.yaml"], repo).stdout)["lr"]
    shown = run(DVC + ["exp", "show", "--md"], repo).output
    assert "0.0001" in shown and str(default_lr) in shown, shown
    assert "generated.fid" in shown and "train.loss_d" in shown, shown
    noop = run(DVC + ["repro"], repo).output
    assert "Running stage" not in noop


@pytest.mark.slow
def test_a_page_style_edit_reruns_only_the_report(small_repo, tmp_path):
    from tests.conftest import committed_copy

    repo = committed_copy(small_repo[0], tmp_path / "css")
    page = repo / "src" / "mnist_gan" / "outputs" / "page.py"
    page.write_text(page.read_text().replace("color: #222;", "color: #111;", 1))
    out = run(DVC + ["repro"], repo).output
    assert "Running stage 'report'" in out
    ran = re.findall(r"Running stage '(\w+)'", out)
    assert ran == ["report"], out


def test_no_import_cycles_anywhere():
    """Every import among the repository's Python files (package, stages, tools, tests), at module level or inside
    a function: the graph has no cycle."""
    modules = all_modules()
    graph = {m: imported_modules(path.read_text(), modules) - {m} for m, path in modules.items()}
    done, active = set(), []

    def visit(node):
        if node in active:
            raise AssertionError("import cycle: " + " -> ".join(active[active.index(node) :] + [node]))
        if node not in done:
            active.append(node)
            for child in sorted(graph[node]):
                visit(child)
            active.pop()
            done.add(node)

    for module in sorted(graph):
        visit(module)


# The package's layers, bottom first (README "Layout"): a module imports only from its own layer or those below.
LAYERS = (
    ("mnist_gan.errors",),
    ("mnist_gan.settings",),
    ("mnist_gan.storage", "mnist_gan.runtime", "mnist_gan.vcs"),
    ("mnist_gan.data",),
    ("mnist_gan.gan",),
    ("mnist_gan.evaluation",),
    ("mnist_gan.outputs",),
    (
        "mnist_gan.sweep",
        "mnist_gan.serving",
        "mnist_gan.release",
        "mnist_gan.stage",
        "mnist_gan.cli",
        "mnist_gan.console",
    ),
)


def layer_of(module: str) -> int:
    found = [i for i, layer in enumerate(LAYERS) for top in layer if module == top or module.startswith(top + ".")]
    assert len(found) == 1, f"{module} belongs to no layer of LAYERS (or to two)"
    return found[0]


def imports_against_the_layers(modules: dict[str, Path]) -> list[str]:
    """'a -> b' for every import (module level, in a function, or through importlib) of a higher layer."""
    return [
        f"{name} -> {imported}"
        for name, path in modules.items()
        for imported in sorted(imported_modules(path.read_text()))
        if imported != "mnist_gan" and layer_of(imported) > layer_of(name)
    ]


def test_imports_run_down_the_layers():
    """settings < storage, runtime < data < gan < evaluation < outputs < sweep, serving, stage, cli; importlib
    counts: the settings validate `model` without importing gan/, from names of their own."""
    assert imports_against_the_layers(library_modules()) == []


# The rooms of the repository, bottom first (README "Layout"): a room imports from itself and from lower ranks only,
# so the tools never import the tests and the two tool rooms of one rank never import each other.
RANKS = {"mnist_gan": 0, "stages": 1, "harness": 1, "benchmarks": 2, "study": 2, "tests": 3}


def imports_against_the_rooms(modules: dict[str, Path]) -> list[str]:
    """'a -> b' for every import of another room of the same or a higher rank."""
    room = lambda name: name.split(".")[0]  # noqa: E731
    return [
        f"{name} -> {imported}"
        for name, path in modules.items()
        for imported in sorted(imported_modules(path.read_text(), modules))
        if room(imported) != room(name) and RANKS[room(imported)] >= RANKS[room(name)]
    ]


def test_rooms_import_downward_only():
    assert set(RANKS) == set(ROOMS)
    assert imports_against_the_rooms(all_modules()) == []


def test_the_room_check_sees_a_tool_that_imports_a_test(tmp_path):
    """A planted upward import from a tool (a benchmark importing the test suite's helpers) is caught."""
    modules = dict(all_modules())
    leak = tmp_path / "leak.py"
    leak.write_text("from tests.conftest import run\n")
    modules["benchmarks.leak"] = leak
    assert imports_against_the_rooms(modules) == ["benchmarks.leak -> tests.conftest"]


def test_the_layer_check_sees_an_import_against_the_order(tmp_path):
    """The check fails for an upward import, whether written as an import or through importlib."""
    modules = dict(library_modules())
    for i, source in enumerate(
        (
            "from mnist_gan.gan.families import FAMILIES\n",
            "import importlib\nF = importlib.import_module('mnist_gan.gan.families')\n",
        )
    ):
        path = tmp_path / f"leak{i}.py"
        path.write_text(source)
        modules["mnist_gan.settings.params"] = path
        assert imports_against_the_layers(modules) == ["mnist_gan.settings.params -> mnist_gan.gan.families"]


def settings_read(script: str) -> set[str]:
    """The params.yaml keys a stage script reads, from its source: `P.<config>.<key>` is one key, `P.<config>`
    handed on whole is every key of that config, `P` itself (or `P.flat()`) is the whole file ("*")."""
    groups = CONFIGS

    def keys(group: str, only: str | None = None) -> set[str]:
        prefix = "" if group in TOP else f"{group}."
        assert only is None or only in fields_of(CONFIGS[group]), f"{script}: P.{group}.{only} is no setting"
        return {prefix + k for k in ([only] if only else fields_of(CONFIGS[group]))}

    tree = ast.parse((ROOT / script).read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    read: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == "P") or isinstance(parents[node], ast.Assign):
            continue
        first = parents[node]
        if not isinstance(first, ast.Attribute) or first.attr not in groups:
            read.add("*")  # P handed on, or P.flat(): the stage shows or passes every setting
            continue
        second = parents[first]
        read |= keys(first.attr, second.attr if isinstance(second, ast.Attribute) else None)
    return read


def settings_listed(stage: dict) -> set[str]:
    """The keys a dvc.yaml stage's `params:` names, sections expanded to their keys; the whole file is "*"."""
    out: set[str] = set()
    for entry in stage.get("params", []):
        if isinstance(entry, dict):
            out.add("*")
        elif entry in SECTIONS:
            out |= {f"{entry}.{k}" for k in fields_of(CONFIGS[entry])}
        else:
            out.add(entry)
    return out


@pytest.mark.parametrize("name", dvc_yaml()["stages"])
def test_each_stage_lists_exactly_the_params_it_reads(name):
    """Both ways: a setting a stage reads but dvc.yaml does not list would make `dvc exp run -S key=...` silently
    stale; a listed one it never reads would rerun the stage for nothing."""
    read, listed = settings_read(f"stages/{name}.py"), settings_listed(dvc_yaml()["stages"][name])
    if "*" in listed or "*" in read:  # the whole file: only right for a stage that shows every setting
        assert "*" in listed and "*" in read, f"{name}: dvc.yaml lists the whole params.yaml iff the stage reads it"
        return
    assert not read - listed, f"{name} reads {sorted(read - listed)}: add them to its params in dvc.yaml"
    assert not listed - read, f"{name} lists {sorted(listed - read)} in dvc.yaml but never reads them"


def test_every_top_level_param_reruns_train():
    """`dvc exp run -S key=...` works on every top-level key: the train stage reads each one."""
    top_level = {k for k in FIELDS if "." not in k}
    assert top_level <= settings_read("stages/train.py")


def test_the_reader_sees_what_a_stage_reads(tmp_path, monkeypatch):
    """settings_read itself: a key, a whole config, the whole file."""
    script = tmp_path / "stages" / "x.py"
    script.parent.mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    script.write_text("P = load()\nn = P.sample.n_images\nf(P.evaluate)\n")
    assert settings_read("stages/x.py") == {"sample.n_images", *(k for k in FIELDS if k.startswith("evaluate."))}
    script.write_text("P = load()\nshow(P.flat())\nlr = P.train.lr\n")
    assert settings_read("stages/x.py") == {"*", "lr"}


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of what a source imports from outside the standard library and this repository."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(ROOMS) - {"__future__"}


def distribution(name: str) -> str:
    """A distribution's name as pip compares them: "PyYAML" and "pyyaml", "annotated_types" and "annotated-types"."""
    return name.lower().replace("_", "-")


def requirement_name(requirement: str) -> str:
    """The distribution a requirement line of the package's metadata names ("dvc[s3]>=3.50" -> "dvc")."""
    return distribution(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])


def test_what_the_package_imports_is_declared_in_pyproject():
    """Every distribution the package's modules import is in pyproject.toml's dependencies or an extra (as the
    installed package's metadata has them), so no import works only because another package happened to bring it
    (pydantic and gto came with DVC)."""
    import importlib.metadata

    declared = {requirement_name(r) for r in importlib.metadata.requires("mnist-gan")}
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for path in library_modules().values():
        for name in third_party_imports(path):
            dists = {distribution(d) for d in providers.get(name, [name])}
            if not dists & declared:
                undeclared[name] = str(path.relative_to(ROOT))
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"


# declared for a library the package calls, which imports them itself
USED_THROUGH = {"tensorboard": "torch.utils.tensorboard", "onnxscript": "torch.onnx.export"}


def test_every_declared_dependency_is_imported_by_the_package():
    """The other way round: each of pyproject.toml's dependencies (and the serve and sweep extras) is imported by the
    package or a stage, or is what a library the package calls imports itself (USED_THROUGH); none is left behind
    after the code that used it has gone."""
    import importlib.metadata

    providers = importlib.metadata.packages_distributions()
    imported = set()
    for path in [*library_modules().values(), *(ROOT / "stages").glob("*.py")]:
        imported |= {distribution(d) for n in third_party_imports(path) for d in providers.get(n, [n])}
    unused = set()
    for requirement in importlib.metadata.requires("mnist-gan"):
        name = requirement_name(requirement)
        if 'extra == "test"' not in requirement and name not in imported | {"mnist-gan", *USED_THROUGH}:
            unused.add(name)
    assert unused == set(), f"declared in pyproject.toml but imported nowhere: {sorted(unused)}"
