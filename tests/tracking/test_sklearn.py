import joblib
import numpy as np
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import gitml
import gitml.sklearn
from gitml import data


def test_classifier_params_scores_and_model(project):
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, y_train)
    with gitml.start_run() as run:
        scores = gitml.sklearn.log_estimator(run, model, X_train, y_train, X_val, y_val)
    rec = run.record
    assert rec["params"]["estimator"] == "RandomForestClassifier"
    assert rec["params"]["n_estimators"] == 20 and rec["params"]["max_depth"] == "None"
    assert rec["metrics"]["validation_accuracy"] == scores["validation_accuracy"]
    assert rec["metrics"]["training_accuracy"] == 1.0
    ref = rec["outputs"]["model.pkl"]
    loaded = joblib.load(data.cache_path(project.root, ref["md5"]))
    np.testing.assert_array_equal(loaded.predict(X_val), model.predict(X_val))


def test_pipeline_regressor(project):
    X, y = load_diabetes(return_X_y=True)
    model = make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(X, y)
    with gitml.start_run() as run:
        gitml.sklearn.log_estimator(run, model, X, y, artifact="models/ridge.joblib")
    rec = run.record
    assert rec["params"]["ridge__alpha"] == 2.0
    assert rec["params"]["ridge"] == "Ridge"
    assert 0 < rec["metrics"]["training_r2"] < 1
    assert "models/ridge.joblib" in rec["outputs"]
