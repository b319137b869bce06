"""The trained classifier: fitted with scikit-learn, saved as JSON, predicted with numpy alone; what it may and may
not change in a draft; `hotline triage train|evaluate`; the labelled data and its split."""

import argparse
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from gateway.basics.clock import SHANGHAI
from gateway.cli import triage as cli_triage
from ivr.triage.classify import default_emergencies, triage
from ivr.triage.lexicon import default_lexicon
from ivr.triage.model import FieldModel, ModelError, TriageModel, load_model, parse_model
from ivr.triage.training import LabelledDataError, fit_field, prepared_text, read_labelled, train

DATA = Path(__file__).parents[1] / "data" / "triage"
TUNING = sorted((DATA / "tuning").glob("*.jsonl"))
TEST = sorted((DATA / "test").glob("*.jsonl"))
RECEIVED = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def tuning_rows():
    rows = []
    for path in TUNING:
        rows += read_labelled(path)
    return rows


@pytest.fixture(scope="module")
def model(tuning_rows):
    return train(tuning_rows[:300], lexicon=default_lexicon(), sources=["tuning"])


def test_numpy_prediction_equals_scikit_learn(tuning_rows):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [prepared_text(r.text, default_lexicon()) for r in tuning_rows[:200]]
    labels = [r.type for r in tuning_rows[:200]]
    field = fit_field(texts, labels)
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, lowercase=False, min_df=3)
    reference = LogisticRegression(C=8.0, max_iter=3000).fit(vectorizer.fit_transform(texts), labels)
    unseen = [prepared_text(r.text, default_lexicon()) for r in tuning_rows[200:240]] + ["", "完全没见过的字"]
    expected = reference.predict_proba(vectorizer.transform(unseen))
    got = np.array([[field.probabilities(t)[c] for c in reference.classes_] for t in unseen])
    assert np.allclose(got, expected, atol=1e-9)


def test_binary_fields_use_the_logistic_function():
    field = fit_field(["着火了"] * 6 + ["问一下"] * 6, ["fire"] * 6 + ["none"] * 6)
    p = field.probabilities("着火")
    assert set(p) == {"fire", "none"} and p["fire"] > 0.5 and abs(sum(p.values()) - 1) < 1e-12


def test_a_model_survives_its_json_file_and_rounding(model, tmp_path):
    path = tmp_path / "model.json"
    model.save(path)
    loaded = load_model(path)
    assert set(loaded.fields) == {"type", "category", "emergency"}
    assert loaded.trained_on["rows"] == 300 and loaded.trained_on["sources"] == ["tuning"]
    text = prepared_text("我 要 投诉 楼下 烧烤 摊 太 吵", default_lexicon())
    for name in loaded.fields:
        a, b = model.fields[name].probabilities(text), loaded.fields[name].probabilities(text)
        assert max(abs(a[k] - b[k]) for k in a) < 1e-3


@pytest.mark.parametrize("mangle,where", [
    (lambda d: d.update(format="pickle"), "format"),
    (lambda d: d.update(version=9), "version"),
    (lambda d: d["fields"].update(colour=d["fields"]["type"]), "fields.colour"),
    (lambda d: d["features"].update(idf=[1.0]), "features"),
    (lambda d: d.pop("features"), "features"),
    (lambda d: d["fields"]["type"].update(coef=[[1.0]]), "fields.type"),
    (lambda d: d["fields"]["type"].pop("coef"), "fields.type"),
])
def test_a_broken_model_file_is_refused_with_the_field(model, mangle, where):
    data = json.loads(json.dumps(model.to_json()))
    mangle(data)
    with pytest.raises(ModelError) as e:
        parse_model(data, source="m.json")
    assert e.value.field_path == where


def test_unreadable_model_files_are_errors_not_crashes(tmp_path):
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="not a JSON model"):
        load_model(tmp_path / "bad.json")
    with pytest.raises(ModelError, match="cannot read"):
        load_model(tmp_path / "none.json")


def test_the_model_may_add_an_emergency_candidate_but_never_removes_a_match():
    rows = [("外公脸色发青手脚冰凉", "120")] * 8 + [("我想问问社保", "none")] * 8
    field = fit_field([t for t, _ in rows], [c for _, c in rows])
    model = TriageModel({"emergency": field}, {})
    assert triage("外公脸色发青手脚冰凉", received=RECEIVED).emergency is None       # the rules do not hear it
    added = triage("外公脸色发青手脚冰凉", received=RECEIVED, model=model)
    assert added.emergency == "120" and added.match.how == "model" and added.type == "help"
    # a model sure that a fire is nothing does not take the emergency list's match away
    contrary = TriageModel({"emergency": fit_field(["救命家里着火了"] * 8 + ["外公脸色发青手脚冰凉"] * 8,
                                                   ["none"] * 8 + ["120"] * 8)}, {})
    assert contrary.predict("救命家里着火了")["emergency"]["none"] > 0.5
    kept = triage("救命 家里 着火 了", received=RECEIVED, model=contrary)
    assert kept.emergency == "119" and kept.match.how == "keyword"


def test_a_model_weighs_in_on_type_when_the_caller_names_no_request():
    texts = ["公园里的鸽子", "公园鸽子好看", "广场上的鸽子"] * 4 + ["楼下那条流浪狗", "门口的野狗"] * 6
    labels = ["suggestion"] * 12 + ["help"] * 12
    model = TriageModel({"type": fit_field(texts, labels)}, {})
    assert triage("公园里的鸽子", received=RECEIVED).type is None      # no verb, no cue
    with_model = triage("公园里的鸽子", received=RECEIVED, model=model)
    assert with_model.type == "suggestion" and with_model.scores["type"]["runner_up"] == "help"
    explicit = triage("我要投诉公园里的鸽子", received=RECEIVED, model=model)
    assert explicit.type == "complaint"      # the caller said 投诉: the verb decides


def test_labelled_files_are_validated_with_the_line(tmp_path):
    good = tmp_path / "tickets.csv"
    good.write_text("text,type,category,emergency\n楼下太吵,complaint,噪音扰民,\n着火了,help,消防安全,119\n",
                    encoding="utf-8")
    rows = read_labelled(good, categories=["噪音扰民", "消防安全"], centres=["119"])
    assert [(r.type, r.emergency) for r in rows] == [("complaint", "none"), ("help", "119")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "type": "complaint"}\n{"text": "y", "type": "moan"}\n', encoding="utf-8")
    with pytest.raises(LabelledDataError) as e:
        read_labelled(bad)
    assert e.value.field_path == "line 2.type"
    bad.write_text('{"text": "x", "category": "天气"}\n', encoding="utf-8")
    with pytest.raises(LabelledDataError, match="not in the unit catalogue"):
        read_labelled(bad, categories=["噪音扰民"])
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(LabelledDataError, match="line 1"):
        read_labelled(bad)


@pytest.fixture
def cli(capsys):
    parser = argparse.ArgumentParser(prog="hotline")
    cli_triage.register(parser.add_subparsers(dest="command", required=True))

    async def run(*argv: str):
        args = parser.parse_args(["triage", *argv])
        capsys.readouterr()
        code = await args.func(args, None)
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_train_then_evaluate_rules_model_and_both(cli, tmp_path):
    out_model = tmp_path / "office.json"
    code, out, err = await cli("train", *map(str, TUNING[:2]), "--out", str(out_model))
    assert code == 0 and err == "" and out_model.exists() and "type (300 rows)" in out
    code, out, _ = await cli("evaluate", str(TUNING[2]), "--model", str(out_model), "--noise", "--json")
    report = json.loads(out)
    assert set(report) == {f"{p}/{v}" for p in ("rules", "model", "both") for v in ("clean", "noisy")}
    both = report["both/clean"]
    assert both["rows"] == 150 and 0 < both["type"]["accuracy"] <= 1
    assert set(both["type_confusion"]["matrix"]) == {"complaint", "consultation", "help", "report", "suggestion"}
    assert both["emergency_recall"]["rows"] == sum(v["rows"] for v in both["per_centre"].values())
    code, out, _ = await cli("evaluate", str(TUNING[2]))
    assert code == 0 and "== rules/clean: 150 transcripts" in out and "type confusion" in out


async def test_train_learns_from_the_tickets_agents_saved(cli, tmp_path):
    from gateway.store.database import Store

    state = tmp_path / "state"
    (tmp_path / "hotline.toml").write_text(f'[gateway]\nstate_dir = "{state}"\n', encoding="utf-8")
    state.mkdir()
    async with await Store.open(state / "hotline.db") as store:
        for n in range(12):
            call = f"c{n}"
            await store.open_call(call_id=call, number="+8613800138000", channel="PJSIP/t", started_at=RECEIVED)
            ticket = await store.create_ticket_draft(call_id=call, request_type=None, created_at=RECEIVED)
            # the agent corrected the type: the corrected field is the label
            kind, text = ("suggestion", "公园里的鸽子很好看") if n % 2 else ("help", "楼下那条流浪狗")
            await store.update_ticket_draft(ticket, transcript=text, type=kind, category="城市管理", status="saved")
        unsaved = await store.create_ticket_draft(call_id="c0", request_type=None, created_at=RECEIVED)
        await store.update_ticket_draft(unsaved, transcript="还没保存", type="report")
    parser = argparse.ArgumentParser(prog="hotline")
    parser.add_argument("--config")
    cli_triage.register(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(["--config", str(tmp_path / "hotline.toml"), "triage", "train", "--from-store",
                                "--out", str(tmp_path / "m.json")])
    assert await parsed.func(parsed, None) == 0
    model = load_model(tmp_path / "m.json")
    assert model.trained_on["labels"]["type"] == {"help": 6, "suggestion": 6}     # saved tickets only
    assert model.trained_on["sources"] == ["store"]
    assert max(model.predict("公园里的鸽子")["type"].items(), key=lambda kv: kv[1])[0] == "suggestion"


async def test_train_refuses_unusable_input(cli, tmp_path):
    (tmp_path / "few.jsonl").write_text('{"text": "a", "type": "help"}\n', encoding="utf-8")
    code, _, err = await cli("train", str(tmp_path / "few.jsonl"), "--out", str(tmp_path / "m.json"))
    assert code == 2 and "nothing to learn" in err
    code, _, err = await cli("evaluate", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "missing.jsonl" in err


# -- the labelled data -----------------------------------------------------------------------------------------

def test_the_labelled_data_is_large_varied_and_split_by_author():
    emergencies = default_emergencies()
    centres = {s.centre for s in emergencies.situations}
    tuning = [r for p in TUNING for r in read_labelled(p)]
    test = [r for p in TEST for r in read_labelled(p)]
    everything = tuning + test
    assert len(everything) >= 800
    assert sum(r.emergency not in (None, "none") for r in everything) >= 200
    assert {r.emergency for r in everything if r.emergency not in (None, "none")} == centres
    assert sum(r.phrasing == "hard_negative" for r in everything) >= 60
    # the two parts come from different authors and share no transcript
    assert not {p.name for p in TUNING} & {p.name for p in TEST}
    assert not {"".join(r.text.split()) for r in tuning} & {"".join(r.text.split()) for r in test}
    per_centre = Counter(r.emergency for r in test if r.emergency not in (None, "none"))
    assert set(per_centre) == centres and min(per_centre.values()) >= 10
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "never used for tuning" in readme


def test_the_packaged_model_was_trained_on_the_tuning_part_only():
    packaged = load_model(Path(cli_triage.__file__).parents[2] / "ivr" / "triage" / "default_model.json")
    sources = packaged.trained_on["sources"]
    assert sources and all("/tuning/" in s for s in sources) and not any("/test/" in s for s in sources)
    assert packaged.trained_on["rows"] == sum(len(read_labelled(p)) for p in TUNING)
    assert isinstance(packaged.fields["type"], FieldModel)
