"""One experiment over user parallel data in two target languages trains stage 1 once."""

import csv
import json

import yaml
from typer.testing import CliRunner

from flare.cli.main import app
from flare.pipeline import stages

FAST = ["stage1.epochs=1", "stage1.max_train_examples=16", "train.epochs=1", "train.max_train_examples=16",
        "train.batch_size=8", "stage1.batch_size=8", "train.max_length=48", "seeds=[1]"]
ROWS = 24  # per split


def _nusax_rows(data_root, language, name):
    with open(data_root / "nusax" / language / name, newline="", encoding="utf-8") as handle:
        return [(row["id"], row["text"], row["label"]) for row in csv.DictReader(handle)][:ROWS]


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("id", "text", "label"), *rows])


def test_two_languages_share_one_stage1(tmp_path, tiny_checkpoints, data_root, monkeypatch):
    files = {}
    for split, name in (("train", "train.csv"), ("validation", "valid.csv"), ("test", "test.csv")):
        _write(tmp_path / f"en_{split}.csv", _nusax_rows(data_root, "english", name))
        for code, prefix in (("de", ""), ("ja", "ja ")):
            _write(tmp_path / f"{code}_{split}.csv",
                   [(i, prefix + text, label) for i, text, label in _nusax_rows(data_root, "javanese", name)])
        files[split] = {"target": str(tmp_path / f"{{language}}_{split}.csv"),
                        "english": str(tmp_path / f"en_{split}.csv")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "task": "parallel", "languages": ["de", "ja"], "model": tiny_checkpoints["bert"],
        "output_dir": str(tmp_path / "run"), "methods": ["lora", "flare"],
        "task_options": {"languages": ["de", "ja"], **files}}))
    built = []
    original = stages.new_stage1_model
    monkeypatch.setattr(stages, "new_stage1_model", lambda *a, **k: built.append(1) or original(*a, **k))
    result = CliRunner().invoke(app, ["run", str(config), *FAST])  # the command line reaches it as a config
    assert result.exit_code == 0, result.output
    assert len(built) == 1
    for method in ("lora", "flare"):
        for code in ("de", "ja"):
            saved = json.loads((tmp_path / "run" / "results" / method / code / "seed-1.json").read_text())
            assert saved["language"] == code and len(saved["predictions"]["predicted"]) == ROWS
            # the label check of every split it read is recorded (clean data here: no mismatch)
            assert {s: m["count"] for s, m in saved["label_mismatches"].items()} == \
                {"train": 0, "validation": 0, "test": 0}
            assert saved["label_mismatches"]["test"]["policy"] == "error"
