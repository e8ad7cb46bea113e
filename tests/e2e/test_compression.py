"""test_compression.py: models compressed at load (infd.compression) and the accuracy guard
(infd.accuracy_guard) in the daemon: the default repository's spam_int8 passes its guard
and serves probabilities close to spam's, its distilled spam_student is smaller and as
accurate, FP16 weights change little, an over-pruned model
is refused with both measured accuracies in its reason while the others serve, and bad
compression or guard settings (an escaping validation set among them) leave their model
UNAVAILABLE with the reason."""
import os
import re
import shutil
import sys

import numpy as np
import pytest
import requests

from conftest import ROOT, Daemon, copy_spam, spam_probabilities

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import eval_spam  # noqa: E402

GUARD = {"validation_set": "validation", "metric": "accuracy", "output": "spam_probability",
         "max_accuracy_drop": 0.005}


# model name -> (infd fields added to spam's config, expected reason or None when it loads,
#                whether the model folder gets a copy of spam_int8's validation set)
MODELS = {
    "spam_fp16": ({"compression": {"precision": "fp16"}}, None, False),
    "spam_w8": ({"compression": {"quantize": "int8-weight-only"},
                 "accuracy_guard": dict(GUARD, metric="agreement")}, None, True),
    "spam_pruned": ({"compression": {"prune": "0.95"}, "accuracy_guard": GUARD},
                    re.compile(r"version 1: accuracy guard: accuracy (0\.\d{4}) compressed vs "
                               r"(0\.\d{4}) uncompressed on 921 rows of 'validation' \(drop "
                               r"0\.\d{4} > max_accuracy_drop 0\.005\)"), True),
    "bad_quantize": ({"compression": {"quantize": "int4"}},
                     "infd.compression: quantize takes none, int8 or int8-weight-only, "
                     "not 'int4'", False),
    "bad_field": ({"compression": {"bits": 8}}, "infd.compression: unknown field 'bits'", False),
    "bad_metric": ({"compression": {"quantize": "int8"},
                    "accuracy_guard": dict(GUARD, metric="f1")},
                   'infd.accuracy_guard.metric must be "accuracy", "agreement" or "cosine"',
                   True),
    "escaping": ({"compression": {"quantize": "int8"},
                  "accuracy_guard": dict(GUARD, validation_set="../spam_int8/validation")},
                 "infd.accuracy_guard.validation_set '../spam_int8/validation' must be a "
                 "relative path inside the model directory", False),
    "escaping_link": ({"compression": {"quantize": "int8"}, "accuracy_guard": GUARD},
                      "accuracy guard: validation set 'validation' resolves outside the model "
                      "directory", False),
    "no_labels": ({"compression": {"quantize": "int8"}, "accuracy_guard": GUARD},
                  "accuracy guard: metric accuracy needs labels.pb in the validation set",
                  False),
    "no_optimizer": ({"optimize": False, "compression": {"quantize": "int8"}},
                     "infd.compression rewrites the optimized graph: it cannot be combined "
                     "with infd.optimize false", False),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """infd on a copy of models/ (spam, spam_text, spam_int8) plus the models above."""
    repo = str(tmp_path_factory.mktemp("compression") / "models")
    shutil.copytree(os.path.join(ROOT, "models"), repo, symlinks=True)
    validation = os.path.join(repo, "spam_int8", "validation")
    for name, (infd, _, with_set) in MODELS.items():
        copy_spam(repo, name, infd)
        if with_set:
            shutil.copytree(validation, os.path.join(repo, name, "validation"))
    os.symlink("../spam_int8/validation", os.path.join(repo, "escaping_link", "validation"))
    os.makedirs(os.path.join(repo, "no_labels", "validation"))
    shutil.copy(os.path.join(validation, "input_0.pb"),
                os.path.join(repo, "no_labels", "validation", "input_0.pb"))
    d = Daemon(repo)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def test_split():
    _, _, x, y = eval_spam.load_split()
    return np.array(x, dtype=np.float32), np.array(y) == 1


def probabilities(served, model, x):
    return spam_probabilities(served.base, model, x)


def index(served):
    return {e["name"]: e for e in requests.post(served.base + "/v2/repository/index").json()}


def accuracy(probs, labels):
    return float(np.mean((probs >= 0.5) == labels))


def test_int8_passes_its_guard(served, test_split):
    """The default repository's spam_int8: READY, its guard's measured values in the log,
    and on the TEST split within 0.5 points of spam with probabilities close to spam's."""
    assert index(served)["spam_int8"]["state"] == "READY"
    passed = re.search(r"model 'spam_int8' version 1: accuracy guard passed: accuracy "
                       r"(0\.\d+) compressed vs (0\.\d+) uncompressed on 921 rows of "
                       r"'validation' \(drop (-?0\.\d+) <= max_accuracy_drop 0\.005\)",
                       served.logs())
    assert passed, served.logs()
    x, labels = test_split
    fp32, int8 = probabilities(served, "spam", x), probabilities(served, "spam_int8", x)
    assert float(passed.group(2)) == pytest.approx(accuracy(fp32, labels), abs=5e-5)
    assert float(passed.group(1)) == pytest.approx(accuracy(int8, labels), abs=5e-5)
    assert accuracy(fp32, labels) - accuracy(int8, labels) <= 0.005
    # dynamic W8A8: per-row activation scales move a few probabilities by a few points
    assert np.mean(np.abs(fp32 - int8)) < 0.005 and np.max(np.abs(fp32 - int8)) < 0.15
    assert np.mean((fp32 >= 0.5) == (int8 >= 0.5)) >= 0.99


def test_compression_is_logged(served):
    """Each compressed model's load line gives its weight bytes before and after."""
    logs = served.logs()
    for name in ("spam_int8", "spam_fp16", "spam_w8"):
        m = re.search(rf"model '{name}' version 1: compression changed (\d+) node\(s\): "
                      r"weights (\d+) -> (\d+) bytes", logs)
        assert m, logs
        assert int(m.group(1)) >= 1 and int(m.group(3)) < int(m.group(2))
    assert "model 'spam' version 1: compression" not in logs


def test_fp16_and_weight_only_stay_close(served, test_split):
    x, _ = test_split
    fp32 = probabilities(served, "spam", x)
    np.testing.assert_allclose(probabilities(served, "spam_fp16", x), fp32, rtol=0, atol=2e-3)
    np.testing.assert_allclose(probabilities(served, "spam_w8", x), fp32, rtol=0, atol=0.02)
    assert re.search(r"model 'spam_w8' version 1: accuracy guard passed: agreement "
                     r"(0\.99\d\d|1\.0000) of output 'spam_probability'", served.logs())


def test_over_pruned_model_is_refused(served, test_split):
    """95% of the weights zeroed: the guard measures the accuracy drop and refuses it."""
    want = MODELS["spam_pruned"][1]
    reason = index(served)["spam_pruned"]["reason"]
    m = want.search(reason)
    assert index(served)["spam_pruned"]["state"] == "UNAVAILABLE"
    assert m, reason
    pruned, full = float(m.group(1)), float(m.group(2))
    x, labels = test_split
    assert full == pytest.approx(accuracy(probabilities(served, "spam", x), labels), abs=5e-5)
    assert full - pruned > 0.005
    r = requests.get(served.base + "/v2/models/spam_pruned/ready")
    assert r.status_code == 400 and want.search(r.json()["error"]), r.text
    assert f"model 'spam_pruned' is UNAVAILABLE: {m.group(0)}" in served.logs()
    r = requests.post(served.base + "/v2/models/spam_pruned/infer",
                      json={"inputs": [{"name": "features", "datatype": "FP32",
                                        "shape": [1, 57], "data": [0.0] * 57}]})
    assert r.status_code == 503 and "accuracy guard" in r.json()["error"]


@pytest.mark.parametrize("name", [n for n, (_, reason, _) in MODELS.items()
                                  if isinstance(reason, str)])
def test_bad_settings(served, name):
    reason = MODELS[name][1]
    entry = index(served)[name]
    assert entry["state"] == "UNAVAILABLE"
    assert reason in entry["reason"], entry["reason"]
    r = requests.get(f"{served.base}/v2/models/{name}/ready")
    assert r.status_code == 400 and reason in r.json()["error"]


def test_distilled_student(served, test_split):
    """models/spam_student (scripts/distill_spam.py): a fraction of the teacher's weights,
    within half a point of its TEST accuracy."""
    weights = {name: int(w) for name, w in re.findall(
        r"model '(spam|spam_student)' version 1: .*?; weights (\d+) bytes", served.logs())}
    assert weights["spam_student"] < 0.5 * weights["spam"], weights
    x, labels = test_split
    teacher = accuracy(probabilities(served, "spam", x), labels)
    student = accuracy(probabilities(served, "spam_student", x), labels)
    assert student >= 0.94 and teacher - student <= 0.005, (teacher, student)


def test_others_keep_serving(served, test_split):
    x, labels = test_split
    for name in ("spam", "spam_int8", "spam_fp16", "spam_w8"):
        assert accuracy(probabilities(served, name, x[:200]), labels[:200]) > 0.9, name
    assert requests.get(served.base + "/v2/health/ready").status_code == 200


def test_config_echo(served):
    cfg = requests.get(served.base + "/v2/models/spam_int8/config").json()
    assert cfg["infd"]["compression"] == {"quantize": "int8"}
    assert cfg["infd"]["accuracy_guard"] == dict(GUARD, threshold=0.5)
    cfg = requests.get(served.base + "/v2/models/spam/config").json()
    assert "compression" not in cfg["infd"] and "accuracy_guard" not in cfg["infd"]
