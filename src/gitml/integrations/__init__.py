"""Callbacks that log a framework's training to a gitml run through the normal tracking API.

Each takes an optional ``run`` (a `gitml.Run`); without one it logs to the process's current
run, the one `gitml run` wraps the script in, or a new run started on first use. Logging never
breaks training: a failure to log is a warning.

=============================  ===============================================================
``gitml.integrations.xgboost``   ``GitmlCallback()`` for ``xgboost.train(callbacks=[...])``
``gitml.integrations.lightgbm``  ``gitml_callback()`` for ``lightgbm.train(callbacks=[...])``
``gitml.integrations.keras``     ``GitmlCallback()`` for ``model.fit(callbacks=[...])`` (Keras 3)
``gitml.integrations.optuna``    ``GitmlCallback()`` for ``study.optimize(callbacks=[...])``
``gitml.integrations.lightning`` ``GitmlLogger()`` for ``Trainer(logger=...)``
``gitml.integrations.transformers`` ``GitmlCallback()`` for ``Trainer(callbacks=[...])``
=============================  ===============================================================

`gitml.autolog()` adds them by itself to every framework that gets imported.
"""
