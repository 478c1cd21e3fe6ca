"""The method table (flare.methods): one registration adds a method that the config accepts, the
features read as the table says, the runner trains and scores, and the report lists."""

import json

import pytest

import flare.methods
from flare.errors import ConfigError
from flare.methods import MethodSpec, get_method, method_names, register_method
from flare.pipeline import data
from flare.pipeline.config import TRAINED_METHODS, load_config
from flare.pipeline.runner import Experiment
from flare.results.schema import load_results

FAST = ["stage1.epochs=1", "stage1.max_train_examples=16", "train.epochs=1", "train.max_train_examples=16",
        "train.batch_size=8", "stage1.batch_size=8", "train.max_length=32", "stage1.max_length=32", "seeds=[1]",
        "languages=[jav]", "train.max_eval_examples=16", "stage1.max_eval_examples=16"]


@pytest.fixture
def registered(monkeypatch):
    """A method trained on the English side of the target data, then tested on the English side:
    translate-test with the stage-1 model tuned further on the translated data's English."""
    monkeypatch.setattr(flare.methods, "_METHODS", dict(flare.methods._METHODS))
    return register_method(MethodSpec("translate-test-tuned", "LoRA on the English side, tested on it",
                                      trained=True, input="english"))


def test_the_table_names_every_builtin_method_and_its_sides():
    assert method_names() == ("zero-shot", "translate-test", "lora", "input-fusion", "xmixup", "flare", "flare-mt")
    assert TRAINED_METHODS == ("lora", "input-fusion", "xmixup", "flare", "flare-mt")
    assert [n for n in method_names() if get_method(n).reads_english] == [
        "translate-test", "input-fusion", "xmixup", "flare"]
    assert [n for n in method_names() if get_method(n).fuses] == ["flare", "flare-mt"]


def test_a_bad_or_repeated_registration_fails():
    with pytest.raises(ConfigError, match="already registered"):
        register_method(MethodSpec("lora", "again", trained=True))
    with pytest.raises(ConfigError, match="input must be one of"):
        MethodSpec("x", "x", trained=True, input="french")
    with pytest.raises(ConfigError, match="nothing to train"):
        MethodSpec("x", "x", trained=True, model="stage1")
    with pytest.raises(ConfigError, match="unknown method 'nope'; valid methods: zero-shot"):
        load_config(None, ["methods=[nope]"])


def test_one_registration_adds_a_method_end_to_end(registered, tmp_path, tiny_checkpoints, monkeypatch):
    sides = []
    original = data.build_features

    def spy(examples, head, method, where=""):
        features = original(examples, head, method, where)
        if method == registered.name:
            sides.append([f["input_ids"] for f in features] == [head.encode(e.english, e.label).input_ids
                                                                 for e in examples])
        return features

    monkeypatch.setattr("flare.pipeline.runner.build_features", spy)
    monkeypatch.setattr("flare.pipeline.inputs.build_features", spy)
    settings = load_config(None, [f"model={tiny_checkpoints['bert']}", f"output_dir={tmp_path / 'run'}",
                                  "methods=[translate-test, translate-test-tuned]", *FAST])
    assert settings.search.method_grid(settings.methods[1]) == {}  # trained, so tunable, but no grid here
    Experiment(settings, log=lambda m: None).run()
    assert sides and all(sides)  # train, validation and test features all read the English side
    result = json.loads((tmp_path / "run" / "results" / "translate-test-tuned" / "jav" / "seed-1.json").read_text())
    assert result["base_method"] == "translate-test-tuned" and result["budget"]["optimizer_steps"] > 0
    runs, warnings = load_results(tmp_path / "run")
    assert {r.method for r in runs} == {"translate-test", "translate-test-tuned"} and not warnings
