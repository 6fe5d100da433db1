"""Prepare the data: the UCI wine dataset shipped with scikit-learn, as data/wine.csv."""

from pathlib import Path

from sklearn.datasets import load_wine

import gitml

with gitml.start_run("prepare") as run:
    frame = load_wine(as_frame=True).frame
    Path("data").mkdir(exist_ok=True)
    frame.to_csv("data/wine.csv", index=False)
    run.log_metric("rows", len(frame))
    run.log_artifact("data/wine.csv")
