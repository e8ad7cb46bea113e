"""The committed spam model, executed by infd's C runtime (infd-run), reaches the goal TEST
accuracy and agrees with onnxruntime. The runner is $INFD_RUN (default build/infd-run)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import eval_spam  # noqa: E402

RUNNER = os.environ.get("INFD_RUN", os.path.join(ROOT, "build/infd-run"))


@pytest.fixture(scope="module")
def result():
    if not os.access(RUNNER, os.X_OK):
        pytest.fail(f"infd-run not found at {RUNNER} (build it or set INFD_RUN)")
    return eval_spam.evaluate(runner=RUNNER)


def test_split_sizes():
    train_x, train_y, test_x, test_y = eval_spam.load_split()
    assert (len(train_x), len(train_y), len(test_x), len(test_y)) == (3680, 3680, 921, 921)


def test_accuracy_through_infd(result):
    assert result["rows"] == 921
    assert result["accuracy_infd"] >= 0.94


def test_agrees_with_onnxruntime(result):
    assert result["max_abs_diff"] <= 1e-5
    assert result["accuracy_infd"] == result["accuracy_ort"]
