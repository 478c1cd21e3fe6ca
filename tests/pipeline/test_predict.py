"""`flare predict` on raw text gives the predictions `flare run` stored for the same test examples,
with the English side from a column, and FLARE's plain-LoRA path without one."""

import csv
import json

import pytest
from typer.testing import CliRunner

from flare.cli.main import app
from flare.pipeline.config import load_config, save_config
from flare.pipeline.runner import Experiment
from flare.tasks import get_task

FAST = ["stage1.epochs=1", "stage1.max_train_examples=16", "train.epochs=1", "train.max_train_examples=16",
        "train.batch_size=8", "stage1.batch_size=8", "train.max_length=48", "seeds=[1]", "languages=[jav]",
        "no_english_rows=true"]


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_predict_matches_the_stored_test_predictions(tmp_path, tiny_checkpoints, data_root, family):
    config = load_config(None, [f"model={tiny_checkpoints[family]}", f"output_dir={tmp_path / 'run'}",
                                "methods=[flare]", f"data_dir={data_root}", *FAST])
    Experiment(config, log=lambda m: None).run()
    save_config(config, tmp_path / "config.yaml")
    stored = json.loads((tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").read_text())
    plain = json.loads((tmp_path / "run" / "results" / "flare-no-english" / "jav" / "seed-1.json").read_text())
    test = get_task("nusax").load("jav", "test", data_root)[:40]
    with (tmp_path / "input.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "english"])
        for example in test:
            writer.writerow([example.id, example.text, example.english[0]])
    runner = CliRunner()
    for english, expected in ((["--english-column", "english"], stored), (["--english", "none"], plain)):
        out = tmp_path / f"predictions-{english[-1]}.jsonl"
        result = runner.invoke(app, ["predict", str(tmp_path / "config.yaml"), "--input", str(tmp_path / "input.csv"),
                                     "--language", "jav", "--id-column", "id", "--out", str(out), *english])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        by_id = dict(zip(expected["predictions"]["ids"], expected["predictions"]["predicted"]))
        assert [r["id"] for r in rows] == [e.id for e in test]
        assert [r["label_index"] for r in rows] == [by_id[e.id] for e in test]
        assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    assert "FLARE runs as plain LoRA" in " ".join(result.output.split())


def test_predict_answers_questions_like_the_stored_run(tmp_path, qa_checkpoints, qa_data_root):
    config = load_config(None, [
        "task=xquad", "languages=[de]", f"data_dir={qa_data_root}", f"model={qa_checkpoints['bert']}",
        f"output_dir={tmp_path / 'run'}", "methods=[flare]", "seeds=[1]", "stage1.epochs=1", "train.epochs=1",
        "stage1.batch_size=8", "train.batch_size=8", "train.max_length=24", "threads=2", "no_english_rows=false"])
    Experiment(config, log=lambda m: None).run()
    save_config(config, tmp_path / "config.yaml")
    stored = json.loads((tmp_path / "run" / "results" / "flare" / "de" / "seed-1.json").read_text())
    test = get_task("xquad").load("de", "test", qa_data_root)
    with (tmp_path / "questions.jsonl").open("w") as handle:
        for e in test:
            handle.write(json.dumps({"id": e.id, "question": e.question, "context": e.context,
                                     "en_question": e.english.question, "en_context": e.english.context}) + "\n")
    out = tmp_path / "answers.jsonl"
    result = CliRunner().invoke(app, [
        "predict", str(tmp_path / "config.yaml"), "--input", str(tmp_path / "questions.jsonl"), "--language", "de",
        "--id-column", "id", "--text-column", "question", "--text-column", "context",
        "--english-column", "en_question", "--english-column", "en_context", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["answer"] for r in rows] == stored["predictions"]["predicted"]
