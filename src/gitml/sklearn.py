"""The public scikit-learn helper, `gitml.sklearn.log_estimator`; it lives in the tracking domain.

Example:
    >>> import gitml.sklearn
    >>> with gitml.start_run("rf") as run:
    ...     gitml.sklearn.log_estimator(run, model, X_train, y_train, X_val, y_val)

"""

from gitml.tracking.sklearn import estimator_params, log_estimator, score_name

__all__ = ["estimator_params", "log_estimator", "score_name"]
