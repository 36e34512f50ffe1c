"""The recipe study and the generated figures: quality rows and their cost (pareto.py: run, score, time, plot), the row
model every table shares (rows.py), FLOPs (flops.py), and the cog sections of README.md and docs/ (docs.py), with
the study's targets as data (targets.yaml). Imports the package; tests import it; benchmarks/ and it never import
each other."""
