"""Sweeps as Ray tasks: every trial is `dvc exp run` in a fresh clone of the swept commit, pushed back with
`dvc exp push`, so `dvc exp show` and `mnist-gan compare` see the whole sweep (`mnist-gan sweep`, docs/sweeps.md).

grid.py: the trials of `-S` overrides, parsed as `dvc exp run --queue -S` parses them, and checked against the
project's own rules; remotes.py: the git and DVC remotes every node reaches; trial.py: what one trial does on
its worker; guard.py: a trial's commands, which stop with every process they start; driver.py: the cluster, the
progress table, Ctrl-C, the results pulled back.
"""
