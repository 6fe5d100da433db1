"""Each framework integration against the real framework, on a real small dataset.

Every script runs under `gitml run` as a user's would; the test reads what reached run.toml and
metrics.parquet. A framework that is not installed skips its test (CI installs them all).
"""

from __future__ import annotations

import importlib.util
import os
import textwrap
import tomllib
from collections import defaultdict

import pytest

from gitml.repo import Repo
from gitml.tracking import journal
from tests.helpers import commit_all, gitml

WINE = textwrap.dedent("""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split
    X, y = load_wine(return_X_y=True)
    y = (y == 0).astype(int)
    Xtr, Xva, ytr, yva = train_test_split(X, y, random_state=0)
""")


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):  # CI installs every framework of the test extra
            pytest.fail(f"{module} is not installed, and CI must test its integration")
        pytest.skip(f"{module} is not installed")


def _run(project: Repo, script: str, *args: str, env: dict[str, str] | None = None) -> dict:
    (project.root / "train.py").write_text(WINE + textwrap.dedent(script))
    commit_all(project.root, "a training script")
    done = gitml(project.root, "run", *args, "--", "python", "train.py", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "could not log" not in done.stderr and "cannot hook" not in done.stderr, done.stderr
    runs = sorted(project.runs_dir.glob("*/run.toml"))
    rec = tomllib.loads(runs[-1].read_text())
    assert rec["status"] == "finished", rec
    return rec


def _steps(project: Repo, rec: dict) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for step, _t, value, name in journal.read_parquet(
        project.run_dir(rec["id"]) / "metrics.parquet"
    ).rows:
        out[name].append((step, value))
    return out


def test_xgboost_callback_logs_rounds_params_and_a_json_booster(project: Repo) -> None:
    _needs("xgboost")
    rec = _run(project, """
        import xgboost as xgb
        from gitml.integrations.xgboost import GitmlCallback
        dtr, dva = xgb.DMatrix(Xtr, label=ytr), xgb.DMatrix(Xva, label=yva)
        xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3}, dtr, 12,
                  evals=[(dtr, "train"), (dva, "valid")], callbacks=[GitmlCallback()])
    """)  # fmt: skip
    steps = _steps(project, rec)
    assert [s for s, _ in steps["valid-logloss"]] == list(range(12))
    assert steps["valid-logloss"][-1][1] < steps["valid-logloss"][0][1]  # it learned
    assert rec["params"]["max_depth"] == 3 and rec["params"]["objective"] == "binary:logistic"
    assert rec["outputs"]["model.json"]["size"] > 0
    assert (project.root / "model.json").read_text().startswith("{")


def test_xgboost_autolog_logs_the_sklearn_model_once(project: Repo) -> None:
    _needs("xgboost")
    rec = _run(project, """
        import gitml, xgboost as xgb
        gitml.autolog()
        xgb.XGBClassifier(n_estimators=8, max_depth=2).fit(Xtr, ytr, eval_set=[(Xva, yva)])
    """)  # fmt: skip
    steps = _steps(project, rec)
    assert len(steps["validation_0-logloss"]) == 8
    assert "model.json" not in rec["outputs"]  # the scikit-learn autolog logged the model
    assert any(p.startswith("models/xgbclassifier") for p in rec["outputs"])


def test_lightgbm_callback_and_autolog(project: Repo) -> None:
    _needs("lightgbm")
    rec = _run(project, """
        import lightgbm as lgb
        from gitml.integrations.lightgbm import gitml_callback
        train = lgb.Dataset(Xtr, label=ytr)
        valid = lgb.Dataset(Xva, label=yva, reference=train)
        lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1}, train, 10,
                  valid_sets=[valid], callbacks=[gitml_callback()])
    """)  # fmt: skip
    steps = _steps(project, rec)
    assert [s for s, _ in steps["valid_0-binary_logloss"]] == list(range(10))
    assert rec["params"]["num_leaves"] == 7 and rec["params"]["num_iterations"] == 10
    assert "tree" in (project.root / "model.txt").read_text()[:200]

    rec = _run(project, """
        import gitml, lightgbm as lgb
        gitml.autolog()
        booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(Xtr, label=ytr),
                            6, valid_sets=[lgb.Dataset(Xva, label=yva)])
    """)  # fmt: skip
    assert len(_steps(project, rec)["valid_0-binary_logloss"]) == 6
    assert rec["outputs"]["model.txt"]["size"] > 0


def test_keras_callback_logs_epochs_and_a_keras_file(project: Repo) -> None:
    _needs("keras")
    rec = _run(project, """
        import os, gitml, keras
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((13,)), keras.layers.Normalization(),
                                  keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.layers[0].adapt(Xtr)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                      metrics=["accuracy"])
        gitml.autolog()
        model.fit(Xtr, ytr, epochs=5, batch_size=32, validation_data=(Xva, yva), verbose=0)
    """, env={"KERAS_BACKEND": "torch"})  # fmt: skip
    steps = _steps(project, rec)
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert [s for s, _ in steps[name]] == [0, 1, 2, 3, 4], name
    assert rec["params"]["epochs"] == 5 and rec["params"]["optimizer"] == "Adam"
    assert rec["params"]["learning_rate"] == pytest.approx(0.01)
    assert rec["outputs"]["model.keras"]["size"] > 0


def test_optuna_callback_makes_a_run_per_trial(project: Repo) -> None:
    _needs("optuna")
    _run(project, """
        import optuna
        from sklearn.linear_model import LogisticRegression
        from gitml.integrations.optuna import GitmlCallback
        def objective(trial):
            C = trial.suggest_float("C", 1e-3, 10, log=True)
            return LogisticRegression(C=C, max_iter=500).fit(Xtr, ytr).score(Xva, yva)
        study = optuna.create_study(direction="maximize", study_name="wine",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(objective, n_trials=4, callbacks=[GitmlCallback("accuracy")])
    """)  # fmt: skip
    recs = [tomllib.loads(p.read_text()) for p in project.runs_dir.glob("*/run.toml")]
    trials = [r for r in recs if r["tags"].get("optuna_study") == "wine"]
    wrapper = next(r for r in recs if "optuna_study" not in r["tags"])
    assert len(trials) == 4
    assert {r["tags"]["optuna_trial"] for r in trials} == {"0", "1", "2", "3"}
    assert all(r["tags"]["parent"] == wrapper["id"] for r in trials)
    assert all(0 < r["metrics"]["accuracy"] <= 1 and r["params"]["C"] > 0 for r in trials)
    assert all(r["status"] == "finished" for r in trials)


@pytest.mark.slow
def test_lightning_logger_logs_steps_params_and_checkpoint(project: Repo) -> None:
    _needs("lightning")
    rec = _run(project, """
        import torch, lightning as L
        from gitml.integrations.lightning import GitmlLogger
        torch.manual_seed(0)
        X = torch.tensor(Xtr, dtype=torch.float32); X = (X - X.mean(0)) / X.std(0)
        y = torch.tensor(ytr, dtype=torch.float32)
        class Net(L.LightningModule):
            def __init__(self, lr=0.05):
                super().__init__(); self.save_hyperparameters(); self.layer = torch.nn.Linear(13, 1)
            def training_step(self, batch, i):
                xb, yb = batch
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    self.layer(xb).squeeze(1), yb)
                self.log("train_loss", loss); return loss
            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
        trainer = L.Trainer(max_epochs=3, logger=GitmlLogger(), log_every_n_steps=1,
                            enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir="lightning")
        trainer.fit(Net(), data)
    """)  # fmt: skip
    steps = _steps(project, rec)["train_loss"]
    assert len(steps) >= 9 and steps[-1][1] < steps[0][1]
    assert rec["params"]["lr"] == 0.05
    assert any(p.endswith(".ckpt") for p in rec["outputs"])


@pytest.mark.slow
def test_transformers_autolog_logs_trainer_steps_and_the_model(project: Repo) -> None:
    _needs("transformers")
    rec = _run(project, """
        import torch
        from transformers import (BertConfig, BertForSequenceClassification, Trainer,
                                  TrainingArguments)
        import gitml
        gitml.autolog()  # every Trainer gets gitml's callback
        torch.manual_seed(0)
        config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32, num_labels=2)
        model = BertForSequenceClassification(config)
        ids = torch.tensor((Xtr[:, :8] * 3).astype(int) % 50)
        rows = [{"input_ids": i, "labels": int(l)} for i, l in zip(ids, ytr)]
        args = TrainingArguments(output_dir="out", num_train_epochs=2, logging_steps=2,
                                 per_device_train_batch_size=16, report_to=[], save_strategy="no",
                                 learning_rate=0.001, use_cpu=True, disable_tqdm=True)
        Trainer(model=model, args=args, train_dataset=rows).train()
    """)  # fmt: skip
    steps = _steps(project, rec)
    assert len(steps["loss"]) >= 3 and steps["loss"][0][0] == 2
    assert rec["params"]["learning_rate"] == 0.001
    assert rec["params"]["model.hidden_size"] == 16
    assert rec["outputs"]["model"]["nfiles"] >= 2  # config.json and model.safetensors
    assert (project.root / "model" / "model.safetensors").is_file()
