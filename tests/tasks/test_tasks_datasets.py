"""User data through Hugging Face datasets: a Dataset, a DatasetDict and load_dataset specs
(local CSV/JSON files only, never the network) give the same examples as the native loader."""

import sys

import pytest

from tasks_testdata import write_csv, write_jsonl
from flare.errors import ConfigError, DataError
from flare.tasks import DataFiles, ParallelConfig, dataset_splits, get_task

datasets = pytest.importorskip("datasets")

SW = [("a1", "habari njema", "pos"), ("a2", "habari mbaya", "neg"), ("a3", "chakula kizuri", "pos"),
      ("a4", "huduma mbaya", "neg"), ("a5", "duka ndogo", "pos")]
EN = {"a1": "good news", "a2": "bad news", "a3": "good food", "a4": "bad service", "a5": "small shop"}


def loaded(task, language="sw"):
    """Every split of both sides, with label names (so different label orders would show)."""
    return {
        (code, split): [(x.id, x.texts, x.english, task.label_names[x.label]) for x in task.load(code, split)]
        for code in (language, "en") for split in task.splits(code)
    }


def native_task(paths):
    splits = {s: {"target": str(t), "english": str(e)} for s, (t, e) in paths.items()}
    return get_task("parallel", {"language": "sw", **splits})


def write_two_file(folder):
    paths = {}
    for split, rows in (("train", SW[:3]), ("test", SW[3:])):
        paths[split] = (
            write_csv(folder / f"sw_{split}.csv", ["id", "text", "label"], rows),
            write_csv(folder / f"en_{split}.csv", ["id", "text"], [(i, EN[i]) for i, _, _ in reversed(rows)]),
        )
    return paths


def test_a_dataset_loads_the_same_examples_as_the_csv_files(tmp_path):
    paths = write_two_file(tmp_path)
    native = native_task(paths)
    as_datasets = {
        split: DataFiles(
            datasets.Dataset.from_dict({"id": [r[0] for r in rows], "text": [r[1] for r in rows],
                                        "label": [r[2] for r in rows]}),
            datasets.Dataset.from_list([{"id": i, "text": EN[i]} for i, _, _ in reversed(rows)]),
        )
        for split, rows in (("train", SW[:3]), ("test", SW[3:]))
    }
    task = get_task("parallel", ParallelConfig("sw", splits=as_datasets))
    assert task.label_names == native.label_names == ("neg", "pos")
    assert loaded(task) == loaded(native)
    assert loaded(task)[("sw", "train")][0] == ("a1", ("habari njema",), ("good news",), "pos")
    # a DatasetDict pair, through dataset_splits
    target = datasets.DatasetDict({s: f.target for s, f in as_datasets.items()})
    english = datasets.DatasetDict({s: f.english for s, f in as_datasets.items()})
    assert loaded(get_task("parallel", ParallelConfig("sw", splits=dataset_splits(target, english)))) == loaded(native)


def test_a_load_dataset_csv_spec_loads_the_same_examples_as_the_files(tmp_path):
    paths = write_two_file(tmp_path / "d")
    native = native_task(paths)
    cache = str(tmp_path / "cache")
    spec = {  # relative data_files are resolved against base_dir, as paths are
        side: {"path": "csv", "cache_dir": cache,
               "data_files": {"train": f"d/{code}_train.csv", "test": f"d/{code}_test.csv"}}
        for side, code in (("target", "sw"), ("english", "en"))
    }
    config = ParallelConfig.from_dict({"language": "sw", "dataset": spec}, base_dir=tmp_path)
    assert config.splits_given == ("train", "test")
    assert loaded(get_task("parallel", config)) == loaded(native)
    # per split, {dataset: ...} in place of a path (a one-split DatasetDict gives its only split)
    per_split = {
        s: {"target": {"dataset": {"path": "csv", "data_files": str(t), "cache_dir": cache}}, "english": str(e)}
        for s, (t, e) in paths.items()
    }
    assert loaded(get_task("parallel", {"language": "sw", **per_split})) == loaded(native)


def test_a_load_dataset_json_spec_splits_like_the_native_jsonl_loader(tmp_path):
    rows = [{"uid": i, "t": f"maandishi {i}", "e": f"text {i}", "y": ["x", "y", "z"][i % 3]} for i in range(30)]
    path = write_jsonl(tmp_path / "all.jsonl", rows)
    common = {"language": "sw", "id_column": "uid", "text_columns": "t", "english_columns": "e", "label_column": "y"}
    native = get_task("parallel", {**common, "data": str(path)})
    spec = {"path": "json", "data_files": str(path), "cache_dir": str(tmp_path / "cache")}
    from_spec = get_task("parallel", {**common, "data": {"dataset": spec}})
    assert loaded(from_spec) == loaded(native)
    assert sum(len(v) for (code, _), v in loaded(native).items() if code == "sw") == 30
    # a Dataset as the one table to split
    dataset = datasets.Dataset.from_list(rows)
    assert loaded(get_task("parallel", ParallelConfig(data=dataset, **common))) == loaded(native)


def test_a_datasetdict_as_splits_and_class_label_names(tmp_path):
    features = datasets.Features({
        "id": datasets.Value("string"), "premise": datasets.Value("string"), "premise_en": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
    })
    train = datasets.Dataset.from_dict(
        {"id": ["1", "2"], "premise": ["a", "b"], "premise_en": ["A", "B"], "label": [2, 0]}, features=features)
    test = datasets.Dataset.from_dict({"id": ["3"], "premise": ["c"], "premise_en": ["C"], "label": [1]},
                                      features=features)
    task = get_task("parallel", ParallelConfig(
        "sw", splits=datasets.DatasetDict({"train": train, "test": test}), text_columns="premise",
        english_columns="premise_en", labels=("entailment", "neutral", "contradiction")))
    assert [(x.id, x.texts, x.english, x.label) for x in task.load("sw", "train")] == [
        ("1", ("a",), ("A",), 2), ("2", ("b",), ("B",), 0)]
    assert task.load("en", "test")[0].label == 1


def test_dataset_problems_name_the_dataset_and_the_row(tmp_path):
    target = datasets.Dataset.from_dict({"id": ["1", "2"], "text": ["a", "  "], "label": ["p", "q"]})
    english = datasets.Dataset.from_dict({"id": ["1", "2"], "text": ["A", "B"]})
    with pytest.raises(DataError, match=r"^dataset .*, row 1: empty text in column 'text'"):
        get_task("parallel", ParallelConfig("sw", splits={"train": DataFiles(target, english)}))
    with pytest.raises(ConfigError, match="DatasetDict holds several splits"):
        DataFiles(datasets.DatasetDict({"train": target}))
    with pytest.raises(ConfigError, match="split 'dev'"):
        dataset_splits(datasets.DatasetDict({"dev": target}))
    missing = {"path": "csv", "data_files": str(tmp_path / "nope.csv"), "cache_dir": str(tmp_path / "cache")}
    with pytest.raises(DataError, match=r"train: load_dataset\(path='csv'.*failed"):
        get_task("parallel", {"language": "sw", "train": {"dataset": missing}, "english_columns": "e"})
    two = {"path": "csv", "data_files": {"train": str(write_csv(tmp_path / "x.csv", ["id"], [(1,)])),
                                         "test": str(tmp_path / "x.csv")}, "cache_dir": str(tmp_path / "cache")}
    with pytest.raises(ConfigError, match="has splits train, test; add split"):
        get_task("parallel", {"language": "sw", "data": {"dataset": two}, "english_columns": "e"})


def test_without_the_datasets_library_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'flare-xl\[datasets\]'"):
        get_task("parallel", {"language": "sw", "dataset": "org/some-dataset", "english_columns": "e"})
    # files need no datasets library
    paths = write_two_file(tmp_path)
    assert native_task(paths).label_names == ("neg", "pos")


def test_a_dataset_spec_with_the_language_placeholder_covers_every_language(tmp_path):
    for code in ("de", "ja"):
        write_csv(tmp_path / f"{code}.csv", ["id", "text", "label"], [(i, f"{code} {t}", label) for i, t, label in SW])
    write_csv(tmp_path / "en.csv", ["id", "text"], list(EN.items()))
    cache = str(tmp_path / "cache")
    options = {"languages": ["de", "ja"], "dataset": {
        "target": {"path": "csv", "data_files": {"train": "{language}.csv"}, "cache_dir": cache},
        "english": {"path": "csv", "data_files": {"train": "en.csv"}, "cache_dir": cache}}}
    from flare.tasks import ParallelTask, parallel_configs

    task = ParallelTask(parallel_configs(options, base_dir=tmp_path))
    assert [x.texts[0] for x in task.load("ja", "train")][:2] == ["ja habari njema", "ja habari mbaya"]
    assert [x.texts[0] for x in task.load("de", "train")][:1] == ["de habari njema"]
    assert [x.texts[0] for x in task.load("en", "train")][:1] == ["good news"]
