"""Train a RandomForest on data/wine.csv, tracked by gitml.

Run it under `gitml run --param n_estimators=200 -- python train.py`: the params come from
gitml.params(), the run is the one `gitml run` started.
"""

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split

import gitml
import gitml.sklearn

params = gitml.params({"n_estimators": 100, "max_depth": 4, "seed": 0, "test_size": 0.3})

with gitml.start_run(params=params) as run:
    run.log_input("data/wine.csv", profile=True)
    frame = pd.read_csv("data/wine.csv")
    X, y = frame.drop(columns="target"), frame["target"]
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=params["test_size"], random_state=params["seed"], stratify=y
    )

    # Grow the forest ten trees at a time so the run has a learning curve.
    model = RandomForestClassifier(
        n_estimators=0, max_depth=params["max_depth"], random_state=params["seed"], warm_start=True
    )
    for trees in [*range(10, params["n_estimators"], 10), params["n_estimators"]]:
        model.set_params(n_estimators=trees)
        model.fit(X_train, y_train)
        run.log_metric("val_log_loss", log_loss(y_val, model.predict_proba(X_val)), step=trees)

    predicted = model.predict(X_val)
    run.log_metrics({
        "accuracy": accuracy_score(y_val, predicted),
        "f1_macro": f1_score(y_val, predicted, average="macro"),
    })
    gitml.sklearn.log_estimator(run, model, X_train, y_train, X_val, y_val, artifact="model.pkl")
