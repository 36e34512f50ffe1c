"""The study's row model and the logic behind the generated figures: a row named by its changes from the default,
which rows are the default's seeds, the targets' verdicts, the README's results table."""

import json

import pytest
import yaml

from study import docs
from study.docs import EARLIER_OPTIMIZER, earlier, verdict
from study.rows import BEFORE, difference, network, shown
from tests.conftest import ROOT

DEFAULT = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_a_study_row_reads_as_the_changes_that_make_it_from_the_default():
    """Seed and run-only keys apart, in params.yaml's order; a setting newer than the row reads as it was then."""
    row = {**DEFAULT, "seed": 7, "precision": "fp32", "epochs": 6, "lr": DEFAULT["lr"] / 2}
    assert shown(difference(row)) == f"`lr={DEFAULT['lr'] / 2}` `epochs=6`"
    assert shown(difference({**DEFAULT, "seed": 1})) == "the default"
    old = {k: v for k, v in {**DEFAULT, **EARLIER_OPTIMIZER}.items() if k not in BEFORE}  # a row from before them
    assert earlier(old) and not earlier(DEFAULT)
    assert "lr_schedule" not in difference(old, {**DEFAULT, **EARLIER_OPTIMIZER})


def test_rows_share_a_timing_only_when_an_epoch_costs_the_same():
    assert network({**DEFAULT, "seed": 3, "lr": 1e-3, "epochs": 40}) == network(DEFAULT)
    assert network({**DEFAULT, "d_features": 64}) != network(DEFAULT)


@pytest.mark.parametrize(
    ("target", "values", "expected"),
    [
        ({"of": "mean", "op": "<=", "value": 6.0}, [5.0, 6.5], (5.75, True)),
        ({"of": "each", "op": "<=", "value": 6.0}, [5.0, 6.5], (6.5, False)),  # the worst seed
        ({"of": "each", "op": ">=", "value": 0.8}, [0.85, 0.79], (0.79, False)),
        ({"of": "mean", "op": ">=", "value": 0.8}, [0.85, 0.79], (pytest.approx(0.82), True)),
        ({"of": "mean", "op": "<=", "value": 1.0}, [0.5, None], None),  # a seed older than the metric
    ],
)
def test_a_target_is_met_by_the_mean_or_by_every_seed(target, values, expected):
    assert verdict(target, values) == expected


def test_the_results_table_is_the_repro_then_the_other_seeds_then_their_mean(monkeypatch, tmp_path):
    """README's results: the committed repro first, study rows of the same params at other seeds, their mean; a
    row of other params, of the repro's own seed or scored before the two-sample test trained to convergence (no
    standard error) stays out."""
    table = tmp_path / "pareto.jsonl"
    row = lambda seed, fid, **changes: {  # noqa: E731
        "params": {**DEFAULT, "seed": seed, **changes},
        "generated": {"fid": fid, "two_sample_accuracy": 0.5, "two_sample_se": 0.005},
    }
    earlier = {"params": {**DEFAULT, "seed": 3}, "generated": {"fid": 50.0, "two_sample_fast": 0.6}}
    lines = [row(7, 6.0), row(1, 8.0), row(DEFAULT["seed"], 99.0), row(7, 1.0, d_features=7), earlier]
    table.write_text("".join(json.dumps(r) + "\n" for r in lines))
    monkeypatch.setattr(docs, "QUALITY", table)
    runs = docs.default_runs(True)
    repro = json.loads((ROOT / "results" / "evaluate" / "metrics.json").read_text())["generated"]
    assert [seed for seed, _, _ in runs] == [DEFAULT["seed"], 7, 1] and runs[0][1] == repro
    printed = []
    monkeypatch.setattr(docs, "out", printed.append)
    docs.results()
    mean_row = next(line for line in printed[0].splitlines() if line.startswith("| mean of these 3 seeds"))
    assert f"**{(repro['fid'] + 6.0 + 8.0) / 3:.2f}**" in mean_row
