"""test_spam.py: the default model repository (models/) served by infd: the spam model's
TEST-split accuracy in JSON and binary, its actions against the thresholds, spam_text on
realistic e-mails against spam on features computed here by an independent Python
implementation of data/spambase/README.md, and bad text inputs refused with 400."""
import collections
import concurrent.futures as cf
import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import requests
import tritonclient.http as th

from conftest import ROOT, Daemon

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import eval_spam  # noqa: E402

SPAM_FOLDER, FLAG = np.float32(0.9), np.float32(0.5)

EMAILS = [
    # (text, is_spam)
    ("Subject: YOU HAVE WON $1,000,000!!!\n\nCONGRATULATIONS!!! Your email address was selected "
     "in our international lottery. To receive your money, reply with your name, address and "
     "credit card number. Click here NOW to claim your FREE prize!!! Act today, this offer "
     "expires in 24 hours. To be removed from our mailing list, reply with REMOVE.", True),
    ("Subject: Make $5000 a week from home\n\nDear friend, our business opportunity will change "
     "your life! No experience, no credit check. Order our FREE report today and start making "
     "money on the internet. Thousands of people already earn $$$ with our system!!! "
     "Call 1-800-555-0199 now.", True),
    ("Subject: Cheap meds online - save 80%!!!\n\nORDER NOW: viagra, cialis, valium at the "
     "lowest prices on the internet!!! Free shipping on every order over $99. No prescription "
     "needed. Visit our online store and SAVE BIG $$$ today!", True),
    ("Subject: Your account will be suspended\n\nDear customer, we noticed unusual activity on "
     "your account. Please verify your credit card and your address within 48 hours or your "
     "account will be closed. Click the link below and enter your password. Customer Service "
     "Department", True),
    ("Subject: \u00a1\u00a1GANA DINERO YA!! \U0001f4b0\U0001f4b0\n\nWIN BIG MONEY from home! "
     "\u20ac5.000 per week, 100% FREE to join!!! Your success is guaranteed. Order your FREE "
     "kit now: reply to this email with your address. REMOVE in subject to unsubscribe.", True),
    ("Hi George,\n\nthe project meeting is moved to Tuesday 3pm in the lab (building 1U, room "
     "1999). I put the original data and the table of results on the shared drive; please look "
     "at the report draft before then. Thanks,\nMaria\n-- \nHP Labs, Palo Alto", False),
    ("Call for papers: 5th conference on knowledge discovery and data mining (KDD-99). "
     "Submissions of original research on data mining, machine learning and databases are "
     "invited; see http://www.cs.example.edu/kdd99 for the format [PDF, 10 pages]. Deadline: "
     "March 1, 1999. Program committee: J. Smith (cs.example.edu), A. Lee (hpl.hp.com).", False),
    ("re: patch for the telnet client\n\nThanks, I applied it; the parser now handles the "
     "escape sequences (see parse_opt() in telnet.c). One nit: the loop in read_line() can run "
     "past the buffer end; could you add a length check; then it is ready to merge.\n"
     "-- \nGeorge", False),
    ("Hallo J\u00fcrgen,\n\ndanke f\u00fcr die Daten! Das Treffen ist am Montag um 10 Uhr im "
     "B\u00fcro. Bringst du den Bericht mit? Viele Gr\u00fc\u00dfe,\nZo\u00eb \U0001f642", False),
    ("lunch tomorrow? the usual place at noon, i will be a bit late because of the review "
     "meeting. see you there", False),
    ("Subject: Minutes of the PM meeting\n\nAttendees: George, Maria, Kim. 1) The lab move is "
     "on schedule. 2) Labs budget for 2000: see the table in the attached report. 3) Next "
     "meeting: Friday. Action items: George to send the project plan; Kim to order parts.",
     False),
    ("", False),
]


# ---- the features, written from data/spambase/README.md -------------------------------

def feature_words():
    """The 48 words in CSV column order: num3d is "3d", num000 is "000", ..."""
    with open(eval_spam.DATA, newline="") as f:
        header = next(csv.reader(f))
    return [c[3:] if c.startswith("num") else c for c in header[:48]]


WORDS = feature_words()


def features(text):
    """The 57 Spambase features of one e-mail (bytes); a character is a byte."""
    words = [w.lower().decode() for w in re.findall(rb"[A-Za-z0-9]+", text)]
    counts = collections.Counter(words)
    f = [100.0 * counts[w] / len(words) if words else 0.0 for w in WORDS]
    f += [100.0 * text.count(c) / len(text) if text else 0.0 for c in b";([!$#"]
    runs = [len(r) for r in re.findall(rb"[A-Z]+", text)]
    f += [sum(runs) / len(runs) if runs else 0.0, max(runs, default=0), sum(runs)]
    return f


def action(p):
    return "spam_folder" if p >= SPAM_FOLDER else "flag_for_review" if p >= FLAG else "inbox"


# ---- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """infd on a copy of models/ (links kept as links, as a clone has them)."""
    repo = str(tmp_path_factory.mktemp("default") / "models")
    shutil.copytree(os.path.join(ROOT, "models"), repo, symlinks=True)
    d = Daemon(repo)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def client(served):
    c = th.InferenceServerClient(served.url)
    yield c
    c.close()


def infer_json(served, model, inputs):
    r = requests.post("%s/v2/models/%s/infer" % (served.base, model),
                      data=json.dumps({"inputs": inputs}), timeout=60)
    return r.status_code, r.json()


def outputs_by_name(body):
    return {o["name"]: o for o in body["outputs"]}


def text_input(texts, binary):
    x = th.InferInput("text", [len(texts)], "BYTES")
    x.set_data_from_numpy(np.array(texts, dtype=np.object_), binary_data=binary)
    return x


# ---- the repository ----------------------------------------------------------------------

def test_one_onnx_file():
    link = os.path.join(ROOT, "models/spam_text/1/model.onnx")
    assert os.readlink(link) == "../../spam/1/model.onnx"
    assert os.path.samefile(link, os.path.join(ROOT, "models/spam/1/model.onnx"))


def test_metadata(client):
    outputs = [{"name": "spam_probability", "datatype": "FP32", "shape": [-1, 1]},
               {"name": "action", "datatype": "BYTES", "shape": [-1, 1]}]
    md = client.get_model_metadata("spam_text")
    assert md["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert md["outputs"] == outputs
    md = client.get_model_metadata("spam")
    assert md["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 57]}]
    assert md["outputs"] == outputs


def test_config(client):
    for name in ("spam", "spam_text"):
        cfg = client.get_model_config(name)
        assert "dynamic_batching" in cfg
        assert [o["name"] for o in cfg["output"]] == ["spam_probability", "action"]
        post = cfg["infd"]["postprocess"]
        assert post["kind"] == "threshold"
        assert [(r["min"], r["label"]) for r in post["rules"]] == [
            (0.9, "spam_folder"), (0.5, "flag_for_review")]
        assert post["default"] == "inbox"
    cfg = client.get_model_config("spam_text")
    assert cfg["input"] == [{"name": "text", "data_type": "TYPE_STRING", "format": "FORMAT_NONE",
                             "dims": []}]
    assert cfg["infd"]["preprocess"] == {"kind": "spam_features", "input": "text",
                                         "output": "features"}


# ---- accuracy ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def test_split():
    _, _, x, y = eval_spam.load_split()
    return np.array(x, dtype=np.float32), np.array(y) == 1


def check_accuracy(probs, actions, labels):
    assert probs.shape == (len(labels), 1) and actions.shape == (len(labels), 1)
    accuracy = float(np.mean((probs[:, 0] >= 0.5) == labels))
    assert accuracy >= 0.94, accuracy
    assert [a for a in actions[:, 0]] == [action(p) for p in probs[:, 0]]
    assert len(set(actions[:, 0])) == 3  # every action occurs on the TEST split
    return accuracy


@pytest.fixture(scope="module")
def json_result(served, test_split):
    x, _ = test_split
    status, body = infer_json(served, "spam", [
        {"name": "features", "datatype": "FP32", "shape": list(x.shape),
         "data": x.ravel().tolist()}])
    assert status == 200, body
    out = outputs_by_name(body)
    assert out["spam_probability"]["shape"] == [len(x), 1]
    assert out["action"]["shape"] == [len(x), 1]
    return (np.array(out["spam_probability"]["data"], dtype=np.float32).reshape(-1, 1),
            np.array(out["action"]["data"], dtype=object).reshape(-1, 1))


def test_accuracy_json(json_result, test_split):
    check_accuracy(*json_result, test_split[1])


def test_accuracy_binary(client, json_result, test_split):
    x, labels = test_split
    inp = th.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    outs = [th.InferRequestedOutput("spam_probability", binary_data=True),
            th.InferRequestedOutput("action", binary_data=True)]
    res = client.infer("spam", [inp], outputs=outs)
    probs = res.as_numpy("spam_probability")
    actions = np.vectorize(bytes.decode, otypes=[object])(res.as_numpy("action"))
    check_accuracy(probs, actions, labels)
    # the JSON answer carried the same FP32 values (9 significant digits round-trip)
    np.testing.assert_allclose(probs, json_result[0], rtol=0, atol=1e-6)
    assert (actions == json_result[1]).all()


def test_nan_score_gets_the_default_action(served):
    body = ('{"inputs":[{"name":"features","datatype":"FP32","shape":[1,57],"data":[NaN%s]}]}'
            % (",0" * 56))
    r = requests.post(served.base + "/v2/models/spam/infer", data=body, timeout=30)
    out = outputs_by_name(r.json())
    assert np.isnan(out["spam_probability"]["data"][0])
    assert out["action"]["data"] == ["inbox"]


# ---- e-mails: spam_text against spam on features computed here ---------------------------

@pytest.fixture(scope="module")
def expected(client):
    """spam's probabilities and actions for the e-mails' Python features."""
    x = np.array([features(t.encode()) for t, _ in EMAILS], dtype=np.float32)
    inp = th.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = client.infer("spam", [inp])
    return res.as_numpy("spam_probability")[:, 0], [a.decode() for a in res.as_numpy("action")[:, 0]]


def test_python_features_by_hand():
    f = features("Make money now: FREE money!!".encode())
    assert f[WORDS.index("make")] == 20 and f[WORDS.index("money")] == 40
    assert f[48 + 3] == pytest.approx(200 / 28)
    assert f[54:] == [2.5, 4, 5]
    assert features(b"") == [0.0] * 57


def test_emails_json(served, expected):
    probs, actions = expected
    texts = [t for t, _ in EMAILS]
    status, body = infer_json(served, "spam_text", [
        {"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}])
    assert status == 200, body
    out = outputs_by_name(body)
    assert out["spam_probability"]["shape"] == [len(texts), 1]
    assert out["action"]["shape"] == [len(texts), 1]
    np.testing.assert_allclose(out["spam_probability"]["data"], probs, rtol=0, atol=1e-5)
    assert out["action"]["data"] == actions
    assert actions == [action(p) for p in probs]


def test_emails_binary_one_by_one(client, expected):
    probs, actions = expected
    for k, (text, _) in enumerate(EMAILS):
        res = client.infer("spam_text", [text_input([text.encode()], True)],
                           outputs=[th.InferRequestedOutput("spam_probability", binary_data=True),
                                    th.InferRequestedOutput("action", binary_data=True)])
        assert abs(res.as_numpy("spam_probability")[0, 0] - probs[k]) <= 1e-5, text
        assert res.as_numpy("action")[0, 0].decode() == actions[k]


def test_emails_concurrent(served, expected):
    """Concurrent requests meet in batches; each gets back its own rows."""
    probs, actions = expected

    def one(k):
        c = th.InferenceServerClient(served.url)
        res = c.infer("spam_text", [text_input([EMAILS[k][0].encode()] * 3, k % 2 == 0)])
        c.close()
        return k, res.as_numpy("spam_probability")[:, 0], res.as_numpy("action")[:, 0]

    with cf.ThreadPoolExecutor(16) as pool:
        for k, p, a in pool.map(one, [i % len(EMAILS) for i in range(48)]):
            np.testing.assert_allclose(p, [probs[k]] * 3, rtol=0, atol=1e-5)
            assert [s.decode() for s in a] == [actions[k]] * 3


def test_emails_are_told_apart(expected):
    """The e-mails written above as ham all go to the inbox, and most spam to the spam
    folder (the phishing one has none of the 1999 spam's '$', '!' and capitals)."""
    probs, actions = expected
    spam = [a for a, (_, s) in zip(actions, EMAILS) if s]
    ham = [a for a, (_, s) in zip(actions, EMAILS) if not s]
    assert ham == ["inbox"] * len(ham)
    assert spam.count("spam_folder") >= len(spam) - 1, spam


def test_raw_bytes(client):
    """Binary BYTES may hold any bytes (not UTF-8, NUL); a character is a byte."""
    raw = b"FREE \xff\xfe money\x00!!! $$$ \xc3"
    res = client.infer("spam_text", [text_input([raw], True)])
    x = np.array([features(raw)], dtype=np.float32)
    inp = th.InferInput("features", [1, 57], "FP32")
    inp.set_data_from_numpy(x)
    want = client.infer("spam", [inp]).as_numpy("spam_probability")
    assert abs(res.as_numpy("spam_probability")[0, 0] - want[0, 0]) <= 1e-5


def test_readme_examples(served):
    """README.md's curl and Python examples answer what it shows."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    console = re.search(r"```console\n\$ curl (.*?)\n(\{.*?)\n```", readme, re.S)
    url, payload = re.match(r"-s -X POST (\S+) -d '(.*)'$", console.group(1), re.S).groups()
    r = requests.post(url.replace("http://127.0.0.1:8000", served.base), data=payload, timeout=30)
    got, shown = r.json(), json.loads(console.group(2))
    probs = [o.pop("data") for o in got["outputs"] if o["name"] == "spam_probability"]
    want = [o.pop("data") for o in shown["outputs"] if o["name"] == "spam_probability"]
    np.testing.assert_allclose(probs, want, rtol=0, atol=1e-6)
    assert got == shown
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    printed = re.search(r"# (\[\[.*)$", code, re.M).group(1)
    lines = []
    exec(code.replace("127.0.0.1:8000", served.url), {"print": lambda *a: lines.append(a)})
    (prob, act), = lines
    assert act.tolist() == [[b"flag_for_review"]] and printed.endswith(str(act))
    assert abs(prob[0, 0] - float(printed[2:printed.index("]")])) <= 1e-6


def test_make_run_prints_a_working_curl(served):
    """scripts/run.sh (make run) prints a curl for spam_text that works as pasted."""
    banner = subprocess.run([os.path.join(ROOT, "scripts/run.sh"), "/bin/true"], check=True,
                            capture_output=True, text=True, timeout=30,
                            env=dict(os.environ, INFD_PORT=str(served.port))).stdout
    cmd, = [line for line in banner.splitlines() if line.startswith("curl ")]
    assert "/v2/models/spam_text/infer" in cmd
    out = subprocess.run(["bash", "-c", cmd], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    actions = outputs_by_name(json.loads(out))["action"]["data"]
    assert actions == ["spam_folder", "flag_for_review", "inbox"]


# ---- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("inp,message", [
    ({"name": "text", "datatype": "FP32", "shape": [1], "data": [1.5]},
     "input 'text': datatype FP32 does not match the model's BYTES"),
    ({"name": "text", "datatype": "BYTES", "shape": [0], "data": []},
     "input 'text': batch size 0 is outside [1, max_batch_size 1024]"),
    ({"name": "text", "datatype": "BYTES", "shape": [1, 1], "data": ["hi"]},
     "input 'text': shape [1,1] does not match the model's [-1]"),
    ({"name": "text", "datatype": "BYTES", "shape": [2], "data": ["hi"]},
     "input 'text': shape [2] has 2 elements but data has 1"),
    ({"name": "text", "datatype": "BYTES", "shape": [1], "data": [42]},
     "input 'text': element 0 is not a string"),
    ({"name": "features", "datatype": "FP32", "shape": [1, 57], "data": [0.0] * 57},
     "unknown input 'features' for model 'spam_text'"),
])
def test_bad_text_input(served, inp, message):
    status, body = infer_json(served, "spam_text", [inp])
    assert status == 400
    assert body == {"error": message}


def test_bad_text_input_binary(served):
    """A BYTES element whose length prefix runs past the data."""
    header = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": 6}}]}).encode()
    r = requests.post(served.base + "/v2/models/spam_text/infer",
                      data=header + b"\x09\x00\x00\x00hi",
                      headers={"Inference-Header-Content-Length": str(len(header))}, timeout=30)
    assert r.status_code == 400
    assert "BYTES element 0 of 9 bytes goes past its data" in r.json()["error"]
