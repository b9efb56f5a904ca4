"""Read a `genopred cv` run with pandas.

    python docs/examples/read_results.py results/wheat599-gblup

Recomputes each fold's Pearson r from predictions.csv and checks it against summary.json (CI
runs this against a run made by the pip-installed genopred).
"""

import json
import sys

import pandas as pd

run = sys.argv[1] if len(sys.argv) > 1 else "results/wheat599-gblup"

# One row per test prediction: id, fold, observed, predicted, repeat.
pred = pd.read_csv(f"{run}/predictions.csv")
# Per-fold metrics, their mean and sd, and the run's provenance.
with open(f"{run}/summary.json") as f:
    summary = json.load(f)
folds = pd.DataFrame(summary["folds"])

r = pred.groupby(["repeat", "fold"])[["observed", "predicted"]].apply(lambda d: d.observed.corr(d.predicted))
print(folds[["repeat", "fold", "n_test", "pearson", "mse", "ndcg"]].to_string(index=False))
print(f"mean Pearson r over folds: {r.mean():.4f} (summary.json: {summary['metrics']['pearson']['mean']:.4f})")

# The same numbers both ways.
assert len(r) == len(folds)
assert abs(r.mean() - summary["metrics"]["pearson"]["mean"]) < 1e-9
