import pytest

from flare.errors import ConfigError
from flare.tasks import TASKS, Task, describe, get_task
from flare.tasks.nusax import LANGUAGE_FOLDERS


def test_registry_names():
    assert list(TASKS) == ["nusax", "xnli", "tydiqa", "xquad", "parallel"]
    for name in ("nusax", "xnli", "tydiqa", "xquad"):
        task = get_task(name)
        assert task.name == name
        assert isinstance(task, Task)
        assert task.english_language in task.languages


def test_kinds_and_labels():
    assert get_task("nusax").label_names == ("negative", "neutral", "positive")
    assert get_task("xnli").label_names == ("entailment", "neutral", "contradiction")
    assert get_task("nusax").kind == get_task("xnli").kind == "classification"
    assert get_task("tydiqa").kind == get_task("xquad").kind == "qa"
    assert get_task("xquad").label_names == ()


def test_unknown_task():
    with pytest.raises(ConfigError, match="valid tasks: nusax, xnli, tydiqa, xquad, parallel"):
        get_task("sst2")


def test_parallel_needs_config_and_others_take_none():
    with pytest.raises(ConfigError, match="needs a configuration"):
        get_task("parallel")
    with pytest.raises(ConfigError, match="no option"):
        get_task("nusax", {"allow_unanswered": True})
    assert get_task("xquad", {"allow_unanswered": True}).allow_unanswered


def test_unknown_language_lists_codes():
    with pytest.raises(ConfigError) as err:
        get_task("nusax").load("klingon", "train")
    message = str(err.value)
    assert "'klingon'" in message
    for code, folder in LANGUAGE_FOLDERS.items():
        assert f"{code} ({folder})" in message
    with pytest.raises(ConfigError, match="valid codes: ar, bg, de"):
        get_task("xnli").load("xx", "test")


def test_language_aliases():
    nusax = get_task("nusax")
    assert nusax.resolve_language("indonesian") == "ind"
    assert nusax.resolve_language("Toba_Batak") == "bbc"
    assert nusax.resolve_language("JAV") == "jav"
    tydiqa = get_task("tydiqa")
    assert tydiqa.resolve_language("ben") == "bn"
    assert tydiqa.resolve_language("tel") == "te"


def test_unknown_split():
    with pytest.raises(ConfigError, match="valid splits: train, validation, test"):
        get_task("nusax").load("jav", "dev")


def test_tydiqa_target_has_test_only():
    tydiqa = get_task("tydiqa")
    assert tydiqa.splits("en") == ("train", "validation", "test")
    assert tydiqa.splits("sw") == ("test",)
    with pytest.raises(ConfigError, match="only in English"):
        tydiqa.load("sw", "train")


def test_describe(data_root):
    counts = describe("nusax", data_root, languages=["eng", "javanese"])
    assert counts == {
        "eng": {"train": 500, "validation": 100, "test": 400},
        "jav": {"train": 500, "validation": 100, "test": 400},
    }
    tydiqa = describe("tydiqa", data_root, languages=["en", "ar"])
    assert tydiqa == {"en": {"train": 3326, "validation": 370, "test": 440}, "ar": {"test": 921}}


def test_describe_finds_data_root_itself():
    assert describe("xnli", languages=["sw"]) == {"sw": {"train": 1494, "validation": 498, "test": 498}}


def test_a_task_carries_its_prompt_metric_options_and_source():
    """Everything about a task is on its class; the registry collects the sources."""
    from flare.tasks import fetchable_tasks
    from flare.tasks.registry import SOURCES

    assert {name: get_task(name).primary_metric for name in ("nusax", "xnli", "tydiqa", "xquad")} == {
        "nusax": "macro_f1", "xnli": "accuracy", "tydiqa": "f1", "xquad": "f1"}
    assert TASKS["nusax"].prompt == "{0}\nSentiment:" and TASKS["tydiqa"].prompt is None
    assert TASKS["xquad"].options == ("allow_unanswered",) and TASKS["nusax"].options == ()
    assert fetchable_tasks() == ("nusax", "xnli", "tydiqa", "xquad") == tuple(SOURCES)
    assert all(SOURCES[name] is TASKS[name].source for name in SOURCES)


def test_register_task_adds_one_module_worth_of_task(monkeypatch):
    from flare.tasks import register_task
    from flare.tasks.nusax import NusaXTask
    from flare.tasks.registry import SOURCES

    monkeypatch.setattr("flare.tasks.registry.TASKS", dict(TASKS))
    monkeypatch.setattr("flare.tasks.registry.SOURCES", dict(SOURCES))

    class Mine(NusaXTask):
        name = "mine"
        source = None
        prompt = "{0}\nMood:"

    register_task(Mine)
    assert get_task("mine").prompt == "{0}\nMood:"
    with pytest.raises(ConfigError, match="already registered"):
        register_task(Mine)
    from flare.tasks import registry

    assert "mine" in registry.TASKS and "mine" not in registry.SOURCES


def test_old_names_stay_importable():
    from flare.pipeline import heads as old_heads
    from flare.tasks import download as old_download
    from flare.tasks import data_root, fetch, registry

    assert old_heads.PROMPTS == {"nusax": "{0}\nSentiment:", "xnli": "Premise: {0}\nHypothesis: {1}\nLabel:"}
    assert old_download.SOURCES is registry.SOURCES and old_download.fetch_task_data is fetch.fetch_task_data
    assert data_root.FETCHABLE == ("nusax", "xnli", "tydiqa", "xquad")
