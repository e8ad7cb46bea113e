"""test_spam_config.py: the infd.preprocess / infd.postprocess extension fields of a model
config: completed from the model when config.json lists no inputs/outputs, without
batching, with custom thresholds, labels and a NaN label, and every invalid declaration
leaving its model UNAVAILABLE with the reason while the others serve."""
import copy
import json
import math
import os
import shutil

import numpy as np
import pytest
import requests

from conftest import ROOT, Daemon, write_config

PRE = {"kind": "spam_features", "input": "text", "output": "features"}
POST = {"kind": "threshold", "input": "spam_probability", "output": "action",
        "rules": [{"min": 0.9, "label": "spam_folder"}, {"min": 0.5, "label": "flag_for_review"}],
        "default": "inbox"}
TEXT_IO = {"input": [{"name": "text", "data_type": "TYPE_STRING", "dims": []}],
           "output": [{"name": "spam_probability", "data_type": "TYPE_FP32", "dims": [1]},
                      {"name": "action", "data_type": "TYPE_STRING", "dims": [1]}]}


def with_(base, **changes):
    cfg = copy.deepcopy(base)
    cfg.update(changes)
    return cfg


def post_with(**changes):
    return with_(POST, **changes)


# model name -> (config.json, expected reason or None when it must load)
MODELS = {
    "auto": ({"max_batch_size": 16, "dynamic_batching": {},
              "infd": {"preprocess": PRE, "postprocess": POST}}, None),
    "nobatch": ({"infd": {"preprocess": PRE, "postprocess": POST}}, None),
    "custom": ({"max_batch_size": 8, "infd": {"postprocess": post_with(
        rules=[{"min": 0.99, "label": "junk"}, {"min": 0.01, "label": "maybe"}],
        default="deliver", nan="check")}}, None),
    "bad_kind": (with_(TEXT_IO, max_batch_size=8, infd={"preprocess": with_(PRE, kind="tokenizer")}),
                 'infd.preprocess.kind must be "spam_features", not "tokenizer"'),
    "bad_order": ({"max_batch_size": 8, "infd": {"postprocess": post_with(
        rules=[{"min": 0.5, "label": "a"}, {"min": 0.9, "label": "b"}])}},
        "infd.postprocess: rule 1: min 0.9 must be below the previous rule's 0.5"),
    "bad_feed": ({"max_batch_size": 8, "infd": {"preprocess": with_(PRE, output="feats")}},
                 "infd.preprocess.output 'feats' is not an input of the model"),
    "bad_score": ({"max_batch_size": 8, "infd": {"postprocess": post_with(input="score")}},
                  "infd.postprocess.input 'score' is not an output of the model"),
    "bad_text_type": (with_(TEXT_IO, max_batch_size=8, input=[
        {"name": "text", "data_type": "TYPE_FP32", "dims": []}], infd={"preprocess": PRE}),
        "input 'text' of infd.preprocess must be TYPE_STRING"),
    "no_default": ({"max_batch_size": 8, "infd": {"postprocess": {
        k: v for k, v in POST.items() if k != "default"}}},
        "infd.postprocess needs a string 'default'"),
    "undeclared_action": (with_(TEXT_IO, max_batch_size=8, output=TEXT_IO["output"][:1],
                                infd={"preprocess": PRE, "postprocess": POST}),
                          "infd.postprocess output 'action' is not among the config's outputs"),
    "typo": ({"max_batch_size": 8, "infd": {"postprocess": post_with(treshold=0.5)}},
             "infd.postprocess: unknown field 'treshold'"),
    "features_declared": (with_(TEXT_IO, max_batch_size=8, input=TEXT_IO["input"] + [
        {"name": "features", "data_type": "TYPE_FP32", "dims": [57]}], infd={"preprocess": PRE}),
        "input 'features' is made by infd.preprocess from 'text': declare only 'text'"),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    repo = str(tmp_path_factory.mktemp("pipelines") / "models")
    onnx_path = os.path.join(ROOT, "models/spam/1/model.onnx")
    for name, (cfg, _) in MODELS.items():
        os.makedirs(os.path.join(repo, name, "1"))
        shutil.copy(onnx_path, os.path.join(repo, name, "1", "model.onnx"))
        write_config(os.path.join(repo, name), cfg)
    d = Daemon(repo)
    yield d
    d.stop()


def infer(served, model, inputs):
    r = requests.post("%s/v2/models/%s/infer" % (served.base, model),
                      data=json.dumps({"inputs": inputs}), timeout=30)
    return r.status_code, r.json()


@pytest.mark.parametrize("name", [n for n, (_, reason) in MODELS.items() if reason])
def test_invalid_declarations(served, name):
    reason = MODELS[name][1]
    index = {e["name"]: e for e in requests.post(served.base + "/v2/repository/index").json()}
    assert index[name]["state"] == "UNAVAILABLE"
    assert reason in index[name]["reason"], index[name]["reason"]
    r = requests.get("%s/v2/models/%s/ready" % (served.base, name))
    assert r.status_code == 400 and reason in r.json()["error"]


def test_completed_from_the_model(served):
    md = requests.get(served.base + "/v2/models/auto").json()
    assert md["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert md["outputs"] == [{"name": "spam_probability", "datatype": "FP32", "shape": [-1, 1]},
                             {"name": "action", "datatype": "BYTES", "shape": [-1, 1]}]
    cfg = requests.get(served.base + "/v2/models/auto/config").json()
    assert [(i["name"], i["data_type"], i["dims"]) for i in cfg["input"]] == [
        ("text", "TYPE_STRING", [])]
    assert [(o["name"], o["data_type"], o["dims"]) for o in cfg["output"]] == [
        ("spam_probability", "TYPE_FP32", ["1"]), ("action", "TYPE_STRING", ["1"])]
    assert cfg["infd"]["postprocess"]["nan"] == "inbox"
    status, body = infer(served, "auto", [{"name": "text", "datatype": "BYTES", "shape": [2],
                                           "data": ["FREE money!!! $$$", "see you at lunch"]}])
    assert status == 200, body
    assert body["outputs"][1]["data"] == ["spam_folder", "inbox"]


def test_without_batching(served):
    md = requests.get(served.base + "/v2/models/nobatch").json()
    assert md["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    status, body = infer(served, "nobatch", [{"name": "text", "datatype": "BYTES", "shape": [3],
                                              "data": ["FREE money!!! $$$", "hi", ""]}])
    assert status == 200, body
    assert [o["shape"] for o in body["outputs"]] == [[3, 1], [3, 1]]
    assert body["outputs"][1]["data"][:2] == ["spam_folder", "inbox"]


def test_custom_rules_and_nan(served):
    rows = np.zeros((4, 57), dtype=np.float32)
    rows[0, 51:] = [20, 5, 0, 10, 50, 500]     # many '!' and '$', long capital runs
    rows[1, 54:] = [1, 1, 5]                   # almost nothing
    rows[2, 54:] = [2, 4, 30]
    rows[3, 0] = math.nan
    data = ["NaN" if math.isnan(v) else float(v) for v in rows.ravel()]
    body = '{"inputs":[{"name":"features","datatype":"FP32","shape":[4,57],"data":[%s]}]}' % (
        ",".join(str(v) for v in data))
    r = requests.post(served.base + "/v2/models/custom/infer", data=body, timeout=30)
    assert r.status_code == 200, r.text
    probs, actions = (o["data"] for o in r.json()["outputs"])
    assert probs[3] == "NaN" or math.isnan(float(probs[3]))
    want = ["junk" if p >= np.float32(0.99) else "maybe" if p >= np.float32(0.01) else "deliver"
            for p in np.array(probs[:3], dtype=np.float32)]
    assert actions == want + ["check"]
    assert len(set(actions)) >= 3, (probs, actions)


def test_others_serve(served):
    status, _ = infer(served, "auto", [{"name": "text", "datatype": "BYTES", "shape": [1],
                                        "data": ["hello"]}])
    assert status == 200
