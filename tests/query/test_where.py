import pytest

from gitml.errors import WhereSyntaxError
from gitml.query.where import compile_where

ROW = {
    "id": "20261123T085012Z-3fa9c1",
    "status": "finished",
    "metrics.accuracy": 0.93,
    "metrics.val-loss": 0.2,
    "params.model": "rf",
    "params.n_estimators": 100,
    "params.max_depth": "None",
    "tags.owner": "me",
}
CASES = [
    ("metrics.accuracy > 0.9", True),
    ("metrics.accuracy >= 0.93 and params.model == 'rf'", True),
    ("metrics.accuracy > 0.9 AND params.model = 'rf'", True),
    ("metrics.accuracy < 0.9 OR NOT params.model = 'svm'", True),
    ("metrics['val-loss'] < 0.3", True),
    ("50 <= params.n_estimators < 200", True),
    ("50 <= params.n_estimators < 100", False),
    ("status in ('finished', 'crashed')", True),
    ("status not in ['finished']", False),
    ("metrics.missing > 0", False),
    ("metrics.missing == null", True),
    ("not metrics.missing > 0", True),
    ("params.max_depth > 3", False),
    ("params.n_estimators != 100", False),
    ("tags.owner == 'me' and (metrics.accuracy > 0.99 or params.model == 'rf')", True),
    ("metrics.accuracy > -1", True),
    ("id == '20261123T085012Z-3fa9c1'", True),
]


@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0] for c in CASES])
def test_expression(expression, expected):
    assert compile_where(expression)(ROW) is expected


BAD = [
    ("metrics.accuracy >", "ends too early"),
    ("metrics.accuracy >> 1", "expected a comparison"),
    ("foo.bar > 1", "unknown field 'foo.bar'"),
    ("metrics", "expected a comparison"),
    ("__import__('os').system('x') == 0", "expected a field"),
    ("metrics.accuracy > (lambda: 1)", "expected a field"),
    ("metrics.a + 1 > 2", "expected a field"),
    ("", "empty expression"),
    ("metrics.accuracy > 0.9 and", "ends too early"),
    ("metrics[0] > 1", "must be quoted strings"),
    ("'unterminated", "--where"),
]


@pytest.mark.parametrize(("expression", "message"), BAD, ids=[b[0] or "empty" for b in BAD])
def test_bad_expression_is_one_clear_error(expression, message):
    with pytest.raises(WhereSyntaxError) as err:
        compile_where(expression)
    text = str(err.value)
    assert text.startswith("--where ") and message in text
    assert "\n" not in text
