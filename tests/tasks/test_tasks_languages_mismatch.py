"""User data: several target languages in one task, and the on_label_mismatch policies."""

import logging

import pytest

from tasks_testdata import write_csv
from flare.errors import ConfigError, DataError
from flare.tasks import DataFiles, ParallelConfig, ParallelTask, get_task, parallel_configs

EN = [("1", "good food", "pos"), ("2", "bad service", "neg"), ("3", "a shop", "pos"), ("4", "bad news", "neg")]


def write_language(folder, code, labels=None, column="text"):
    """{code}_{split}.csv (target, labels as given) for train and test, and en_{split}.csv."""
    labels = labels or [label for *_, label in EN]
    for split in ("train", "test"):
        write_csv(folder / f"{code}_{split}.csv", ["id", column, "label"],
                  [(i, f"{code} {text}", label) for (i, text, _), label in zip(EN, labels)])
        write_csv(folder / f"en_{split}.csv", ["id", "text", "label"], EN)


# ----------------------------------------------------------------------------- languages
def test_placeholder_gives_one_task_over_every_language(tmp_path):
    for code in ("de", "ja"):
        write_language(tmp_path, code)
    options = {"languages": ["de", "ja"],
               "train": {"target": "{language}_train.csv", "english": "en_train.csv"},
               "test": {"target": "{language}_test.csv", "english": "en_test.csv"}}
    configs = parallel_configs(options, base_dir=tmp_path)
    assert [c.language for c in configs] == ["de", "ja"]
    assert configs[1].splits["train"].target == tmp_path / "ja_train.csv"
    assert ParallelTask(configs).languages == ("de", "ja", "en")
    absolute = {"languages": ["de", "ja"],  # options straight to get_task (paths relative to the working folder)
                "train": {"target": str(tmp_path / "{language}_train.csv"), "english": str(tmp_path / "en_train.csv")},
                "test": {"target": str(tmp_path / "{language}_test.csv"), "english": str(tmp_path / "en_test.csv")}}
    task = get_task("parallel", absolute)
    assert task.languages == ("de", "ja", "en")
    assert [x.texts for x in task.load("ja", "test")][:1] == [("ja good food",)]
    assert [x.texts for x in task.load("de", "train")][:1] == [("de good food",)]
    assert [x.texts for x in task.load("en", "train")] == [(text,) for _, text, _ in EN]
    assert task.label_names == ("neg", "pos")
    assert task.splits("ja") == ("train", "test")


def test_per_language_options_and_a_union_of_labels(tmp_path):
    write_language(tmp_path, "de")
    write_language(tmp_path, "ja", labels=["pos", "neg", "neu", "neg"], column="satz")
    write_csv(tmp_path / "en_ja.csv", ["id", "text"], [(i, t) for i, t, _ in EN])
    options = {"languages": {"de": None, "ja": {"text_columns": "satz", "english_columns": "text",
                                                "train": {"target": "ja_train.csv", "english": "en_ja.csv"}}},
               "train": {"target": "{language}_train.csv", "english": "en_train.csv"}}
    task = ParallelTask(parallel_configs(options, base_dir=tmp_path))
    assert task.label_names == ("neg", "neu", "pos")  # every language's training labels
    assert [task.label_names[x.label] for x in task.load("ja", "train")] == ["pos", "neg", "neu", "neg"]
    assert task.load("ja", "train")[0].english == ("good food",)


def test_language_options_are_checked(tmp_path):
    write_language(tmp_path, "de")
    same = {"languages": ["de", "ja"], "train": {"target": str(tmp_path / "de_train.csv"),
                                                 "english": str(tmp_path / "en_train.csv")}}
    with pytest.raises(ConfigError, match=r"de and ja would read the same data; put \{language\}"):
        get_task("parallel", same)
    with pytest.raises(ConfigError, match="language .one. or languages .several., not both"):
        get_task("parallel", {**same, "language": "de"})
    with pytest.raises(ConfigError, match="languages lists a language twice"):
        get_task("parallel", {**same, "languages": ["de", "de"]})
    with pytest.raises(ConfigError, match="cannot be 'en'"):
        get_task("parallel", {**same, "languages": ["en"]})
    with pytest.raises(ConfigError, match="different label sets"):
        files = {"train": DataFiles(tmp_path / "de_train.csv", tmp_path / "en_train.csv")}
        ParallelTask([ParallelConfig("de", splits=files, labels=("neg", "pos")),
                      ParallelConfig("ja", splits=files, labels=("pos", "neg"))])


# ----------------------------------------------------------------------------- label mismatches
def mismatch_task(tmp_path, policy, **extra):
    write_language(tmp_path, "de", labels=["pos", "pos", "pos", "neg"])  # id 2: pos here, neg in English
    files = {"target": str(tmp_path / "de_train.csv"), "english": str(tmp_path / "en_train.csv")}
    options = {"language": "de", "train": files, **extra}
    if policy is not None:
        options["on_label_mismatch"] = policy
    return get_task("parallel", options)


def test_a_label_mismatch_is_an_error_by_default(tmp_path):
    with pytest.raises(DataError, match=r"de_train\.csv, row 3: id '2' has label 'pos' here but 'neg' in the English"):
        mismatch_task(tmp_path, None)
    with pytest.raises(ConfigError, match="on_label_mismatch must be one of error, drop, target, english"):
        mismatch_task(tmp_path, "ignore")


@pytest.mark.parametrize("policy, expected", [
    ("drop", [("1", "pos"), ("3", "pos"), ("4", "neg")]),
    ("target", [("1", "pos"), ("2", "pos"), ("3", "pos"), ("4", "neg")]),
    ("english", [("1", "pos"), ("2", "neg"), ("3", "pos"), ("4", "neg")]),
])
def test_label_mismatch_policies_are_applied_counted_and_logged(tmp_path, caplog, policy, expected):
    task = mismatch_task(tmp_path, policy)
    with caplog.at_level(logging.WARNING, logger="flare.tasks.parallel"):
        examples = task.load("de", "train")
        task.load("de", "train")  # logged once
    assert [(x.id, task.label_names[x.label]) for x in examples] == expected
    report = task.label_mismatches[("de", "train")]
    assert (report.count, report.rows, report.ids, report.policy) == (1, 4, ("2",), policy)
    assert report.to_dict()["count"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "de/train: 1 of 4 rows" in messages[0]
    assert f"on_label_mismatch={policy}" in messages[0]
    # the English side (stage 1) keeps every row with its English label
    assert [(x.id, task.label_names[x.label]) for x in task.load("en", "train")] == [(i, label) for i, _, label in EN]


def test_clean_data_reports_zero_mismatches(tmp_path, caplog):
    write_language(tmp_path, "de")
    task = get_task("parallel", {"language": "de", "on_label_mismatch": "drop",
                                 "test": {"target": str(tmp_path / "de_test.csv"),
                                          "english": str(tmp_path / "en_test.csv")},
                                 "labels": ["neg", "pos"]})
    with caplog.at_level(logging.WARNING, logger="flare.tasks.parallel"):
        assert len(task.load("de", "test")) == 4
    assert task.label_mismatches[("de", "test")].count == 0 and not caplog.records


def test_dropping_in_a_split_file_keeps_every_other_row_in_its_split(tmp_path):
    rows = [(str(i), f"t{i}", ["a", "b"][i % 2]) for i in range(40)]
    write_csv(tmp_path / "de.csv", ["id", "text", "label"], rows)
    flipped = {"3", "10", "25"}
    write_csv(tmp_path / "en.csv", ["id", "text", "label"],
              [(i, f"e{i}", ({"a": "b", "b": "a"}[label] if i in flipped else label)) for i, _, label in rows])
    options = {"language": "de", "data": {"target": str(tmp_path / "de.csv"), "english": str(tmp_path / "en.csv")}}
    kept = get_task("parallel", {**options, "on_label_mismatch": "english"})
    dropped = get_task("parallel", {**options, "on_label_mismatch": "drop"})
    for split in ("train", "validation", "test"):
        expected = [x.id for x in kept.load("de", split) if x.id not in flipped]
        assert [x.id for x in dropped.load("de", split)] == expected
        assert [x.id for x in dropped.load("en", split)] == [x.id for x in kept.load("en", split)]
    assert sum(dropped.label_mismatches[("de", s)].count for s in ("train", "validation", "test")) == 3


def test_policy_target_adds_the_target_labels_to_an_inferred_label_set(tmp_path):
    write_language(tmp_path, "de", labels=["pos", "neu", "pos", "neg"])  # 'neu' only on the target side
    files = {"target": str(tmp_path / "de_train.csv"), "english": str(tmp_path / "en_train.csv")}
    task = get_task("parallel", {"language": "de", "train": files, "on_label_mismatch": "target"})
    assert task.label_names == ("neg", "neu", "pos")
    assert [task.label_names[x.label] for x in task.load("de", "train")] == ["pos", "neu", "pos", "neg"]
    assert get_task("parallel", {"language": "de", "train": files, "on_label_mismatch": "drop"}).label_names == ("neg", "pos")
