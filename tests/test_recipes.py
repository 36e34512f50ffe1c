"""The seed recipes (settings/recipes.yaml; docs/recipes.md shows their `dvc exp run -S ...` lines) run, a few steps,
through every stage their keys reach: train (and normalize, for seed 004's 64x64 images). The stages after train read
only generator.pt, the same code for every family: seed 004 (unconditional, 64x64 images downsized for the classifier)
also runs sample and evaluate; the tiny repo's own repro covers them for a conditional 28x28 generator, and
tests/test_export.py exports every family."""

import json

import pytest
import yaml

from mnist_gan.settings.params import load_params, parse, with_changes
from mnist_gan.settings.recipes import overrides, recipes, study_recipes
from study.docs import shell_lines, study_line, wrap
from tests.conftest import DVC, ROOT, committed_copy, run

# Appended to each recipe: later -S flags for the same key win, so each runs a few steps on little data (no
# per-epoch FID: the tiny repro of tests/test_pipeline.py covers it; the recipes' own keys are what is tested here).
SHORT = [
    "-S",
    "epochs=1",
    "-S",
    "normalize.max_train_images=256",
    "-S",
    "evaluate.n_samples=100",
    "-S",
    "sample.n_images=16",
    "-S",
    "quality_samples=0",
]


def test_a_recipe_for_each_seed_and_docs_show_them():
    assert sorted(recipes()) == ["000", "001", "002", "003", "004"]
    page = (ROOT / "docs" / "recipes.md").read_text()
    assert all(
        wrap(line) in page for line in shell_lines()
    )  # generated from src/mnist_gan/settings/recipes.yaml (make docs)


def test_the_study_recipes_are_valid_changes_and_readme_and_docs_show_their_lines():
    readme, page = ((ROOT / doc).read_text() for doc in ("README.md", "docs/recipes.md"))
    assert study_recipes()  # the study names at least one
    for name, recipe in study_recipes().items():
        parse(with_changes(load_params(ROOT / "params.yaml").as_dict(), recipe["set"]), f"recipe {name}")
        assert study_line(name).startswith("dvc exp run -S ")
        assert f"`{study_line(name)}`" in readme and f"{study_line(name)}   # {name}" in page


@pytest.fixture(scope="module")
def recipes_repo(small_repo, tmp_path_factory):
    """A copy of the tiny repo the recipes run in, one after the other (each leaves its params in the workspace)."""
    return committed_copy(small_repo[0], tmp_path_factory.mktemp("recipes") / "repo")


@pytest.mark.slow
@pytest.mark.parametrize("seed", ["000", "001", "002", "003", "004"])
def test_recipe_runs(recipes_repo, seed):
    repo = recipes_repo
    argv = ["dvc", "exp", "run", *[part for value in overrides(seed) for part in ("-S", value)]]
    stages = ["train", "sample", "evaluate"] if seed == "004" else ["train"]
    out = run(DVC + argv[1:] + SHORT + stages, repo).output
    assert all(f"Running stage '{stage}'" in out for stage in stages), out
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for flag in argv[argv.index("-S") :][1::2]:  # every value the recipe set is in effect
        key, value = flag.split("=", 1)
        node = params
        for part in key.split("."):
            node = node[part]
        if key != "epochs":
            assert node == yaml.safe_load(value), key
    if "evaluate" in stages:
        assert json.loads((repo / "results" / "evaluate" / "metrics.json").read_text())["generated"]["fid"] > 0
    if params["tensorboard"]:  # seed 002's SummaryWriter logging
        assert list((repo / "results" / "train" / "tensorboard").glob("events.out.tfevents.*"))
    generator = __import__("torch").load(repo / "models" / "generator.pt", weights_only=True)
    assert generator["config"]["model"] == params["model"]
