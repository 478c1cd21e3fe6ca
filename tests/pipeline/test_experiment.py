"""Every method end to end on tiny models and real NusaX data, then the report."""

import json

import pytest
import torch
from typer.testing import CliRunner

from flare.cli.main import app
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment

FAST = ["stage1.epochs=1", "stage1.max_train_examples=16", "train.epochs=1", "train.max_train_examples=16",
        "train.batch_size=8", "stage1.batch_size=8", "train.max_length=48", "seeds=[1]", "languages=[jav]"]


def tiny_config(tmp_path, model, methods):
    return load_config(None, [f"model={model}", f"output_dir={tmp_path / 'run'}", f"methods={methods}",
                              f"mt_encoder={model}", *FAST])


@pytest.mark.parametrize("family", ["bert", "llama", "mt5"])
def test_every_method_runs_and_writes_its_result(tmp_path, tiny_checkpoints, family):
    methods = ["zero-shot", "translate-test", "lora", "flare", "flare-mt", "input-fusion", "xmixup"]
    if family == "mt5":  # X-Mixup is refused for encoder-decoders (see test below)
        methods.remove("xmixup")
    experiment = Experiment(tiny_config(tmp_path, tiny_checkpoints[family], "[" + ",".join(methods) + "]"))
    written = experiment.run()
    assert len(written) == len(methods) + 1  # and flare's row with no English at test time
    assert (tmp_path / "run" / "results" / "flare-no-english" / "jav" / "seed-1.json") in written
    for method in methods:
        result = json.loads((tmp_path / "run" / "results" / method / "jav" / "seed-1.json").read_text())
        assert result["method"] == method and result["language"] == "jav"
        assert set(result["metrics"]["test"]) == {"accuracy", "macro_f1"}
        assert len(result["predictions"]["predicted"]) == 400
        assert result["english_side"] == "human translation"
    # alignment "auto": decoders pair the prompts at their end, the others at their start
    [flare_config] = (tmp_path / "run").rglob("flare/jav/**/flare_config.json")
    assert json.loads(flare_config.read_text())["alignment"] == ("end" if family == "llama" else "start")
    # a second run skips every finished run
    assert experiment.run() == []
    # a saved adapter evaluates again to the same numbers
    saved = json.loads((tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").read_text())
    assert experiment.evaluate_saved("flare", "jav", 1, "jav") == saved["metrics"]["test"]


def test_cli_run_prints_the_table_and_writes_report_files(tmp_path, tiny_checkpoints):
    config = tmp_path / "config.yaml"
    config.write_text(f"model: {tiny_checkpoints['bert']}\noutput_dir: {tmp_path / 'run'}\n"
                      "methods: [zero-shot, lora]\n")
    result = CliRunner().invoke(app, ["run", str(config), *FAST])
    assert result.exit_code == 0, result.output
    assert "zero-shot" in result.output and "lora" in result.output
    report = tmp_path / "run" / "report"
    assert {p.name for p in report.iterdir()} >= {"results.csv", "results.md", "comparison.png"}
    assert (tmp_path / "run" / "config.yaml").is_file()
    rebuilt = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert rebuilt.exit_code == 0 and "lora" in rebuilt.output


@pytest.mark.parametrize("setting", ["tensorboard=true", "log_with=[tensorboard]"])
def test_tracker_logs_are_written(tmp_path, tiny_checkpoints, setting):
    """Experiment trackers go through accelerate's tracker classes (log_with), one run each."""
    config = load_config(None, [f"model={tiny_checkpoints['bert']}", f"output_dir={tmp_path / 'run'}",
                                "methods=[lora]", *FAST, setting])
    Experiment(config).run()
    root = tmp_path / "run" / "tensorboard"
    runs = {p.relative_to(root).parts[0] for p in root.rglob("events.out.tfevents.*")}
    assert runs == {"stage1", "lora-jav-seed-1"}  # one folder a run (its settings in a subfolder)


def test_an_unknown_tracker_fails_when_the_config_is_read():
    from flare.errors import ConfigError

    with pytest.raises(ConfigError, match="log_with: unknown tracker 'tensorbored'"):
        load_config(None, ["log_with=[tensorbored]"])


def test_qa_with_an_encoder_decoder_is_refused_clearly(tmp_path_factory):
    """Extractive QA runs with encoders and decoders (tests/pipeline/test_qa_pipeline.py)."""
    from flare.errors import ConfigError
    from flare.heads import create_head
    from flare.tasks import get_task
    from flare.testing.tiny_models import tiny_model

    folder = tmp_path_factory.mktemp("mt5")
    tiny_model("mt5").save_pretrained(folder)
    with pytest.raises(ConfigError, match="encoder-decoder models"):
        create_head(get_task("tydiqa"), str(folder), 64)


def test_decoder_in_4bit_runs_lora_and_flare(tmp_path, tiny_checkpoints):
    pytest.importorskip("bitsandbytes")
    config = tiny_config(tmp_path, tiny_checkpoints["llama-64"], "[zero-shot,lora,flare]")
    config.quantization = "4bit"
    messages = []
    written = Experiment(config, log=messages.append).run()
    assert len(written) == 4  # with flare-no-english
    assert any("no CUDA device" in m for m in messages)
    result = json.loads((tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").read_text())
    assert result["config"]["quantization"] == "4bit"


def test_unknown_quantization_is_refused(tmp_path, tiny_checkpoints):
    from flare.errors import ConfigError

    config = tiny_config(tmp_path, tiny_checkpoints["bert"], "[lora]")
    config.quantization = "3bit"
    with pytest.raises(ConfigError, match="quantization must be 4bit, 8bit or null"):
        Experiment(config).run()


def test_xmixup_is_refused_for_encoder_decoders(tmp_path, tiny_checkpoints):
    from flare.errors import ConfigError

    with pytest.raises(ConfigError, match="encoder-decoder models"):
        Experiment(tiny_config(tmp_path, tiny_checkpoints["mt5"], "[xmixup]")).run()


class _MarkingTranslator:
    """Stands in for an MT model: marks each text with its direction, and counts calls."""

    def __init__(self):
        self.calls = []

    def translate(self, texts, src, tgt):
        self.calls.append((src, tgt, len(texts)))
        return [f"[{src}->{tgt}] {t}" for t in texts]


def test_machine_translation_replaces_the_human_sides(tmp_path, tiny_checkpoints, monkeypatch):
    translator = _MarkingTranslator()
    monkeypatch.setattr(Experiment, "translator", property(lambda self: translator))
    config = tiny_config(tmp_path, tiny_checkpoints["bert"], "[translate-test,flare]")
    config.translation.model = "stand-in-mt"
    experiment = Experiment(config)
    test = experiment.load("jav", "test")
    assert all(e.english[0].startswith("[jav->eng] ") for e in test)  # target test into English
    assert not test[0].texts[0].startswith("[")  # the real target test set stays
    train = experiment.load("jav", "train", limit=5)
    assert all(e.texts[0].startswith("[eng->jav] ") for e in train)  # translate-train
    assert all(not e.english[0].startswith("[") for e in train)  # the English originals
    experiment.run()
    result = json.loads((tmp_path / "run" / "results" / "flare" / "jav" / "seed-1.json").read_text())
    assert result["english_side"] == "machine translation (stand-in-mt)"
    assert ("jav", "eng", 400) in translator.calls


def test_same_seed_same_stage1_and_stage3(tmp_path, tiny_checkpoints):
    from safetensors.torch import load_file

    outputs = []
    for name in ("a", "b"):
        Experiment(tiny_config(tmp_path / name, tiny_checkpoints["bert"], "[lora]")).run()
        outputs.append(tmp_path / name / "run")
    first, second = (load_file(str(o / "stage1" / "adapter_model.safetensors")) for o in outputs)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    results = [json.loads((o / "results" / "lora" / "jav" / "seed-1.json").read_text()) for o in outputs]
    assert results[0]["predictions"] == results[1]["predictions"]
    assert results[0]["training"]["history"] == results[1]["training"]["history"]


def test_a_decoder_flare_run_with_end_alignment_trains_saves_and_reloads_it(tmp_path, tiny_checkpoints):
    config = tiny_config(tmp_path, tiny_checkpoints["llama"], "[{name: flare-end, method: flare, alignment: end}]")
    experiment = Experiment(config)
    assert len(experiment.run()) == 2  # and flare-end-no-english
    saved = json.loads((tmp_path / "run" / "results" / "flare-end" / "jav" / "seed-1.json").read_text())
    [adapter_config] = (tmp_path / "run").rglob("flare-end/**/flare_config.json")
    assert json.loads(adapter_config.read_text())["alignment"] == "end"
    assert experiment.evaluate_saved("flare-end", "jav", 1, "jav") == saved["metrics"]["test"]


def test_a_result_records_the_commit_its_process_started_from(tmp_path, tiny_checkpoints, monkeypatch):
    """A study runs for hours while its checkout moves on: the record names the code that ran."""
    import subprocess
    from types import SimpleNamespace

    from flare import environment

    head = ["1" * 40]
    git = SimpleNamespace(SubprocessError=subprocess.SubprocessError,
                          run=lambda args, **kw: SimpleNamespace(stdout=head[0] if "rev-parse" in args else ""))
    monkeypatch.setattr(environment, "subprocess", git)
    environment.git_state.cache_clear()
    try:
        experiment = Experiment(tiny_config(tmp_path, tiny_checkpoints["bert"], ["zero-shot"]), log=lambda m: None)
        head[0] = "2" * 40  # a commit made while the study runs
        experiment.run()
    finally:
        environment.git_state.cache_clear()
    result = json.loads((tmp_path / "run" / "results" / "zero-shot" / "jav" / "seed-1.json").read_text())
    assert result["environment"]["git"] == {"commit": "1" * 40, "dirty": False}
