"""User data (the parallel task): layouts, splits, labels, and property-based round trips."""

import csv
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks_testdata import write_csv, write_jsonl
from flare.errors import DataError
from flare.tasks import DataFiles, ParallelConfig, Task, get_task

FORMATS = ("csv", "tsv", "jsonl")


def render(fmt, header, rows, ensure_ascii=False):
    """File content, and the 1-based line where each data row starts (as the loader counts)."""
    starts, out = [], io.StringIO()
    if fmt == "jsonl":
        for number, row in enumerate(rows, start=1):
            starts.append(number)
            out.write(json.dumps(dict(zip(header, row)), ensure_ascii=ensure_ascii) + "\n")
        return out.getvalue(), starts
    writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t")
    writer.writerow(header)
    for row in rows:
        starts.append(len(re.findall(r"\r\n|\r|\n", out.getvalue())) + 1)
        writer.writerow(row)
    return out.getvalue(), starts


def write(path: Path, fmt, header, rows, ensure_ascii=False):
    content, starts = render(fmt, header, rows, ensure_ascii)
    path.write_bytes(content.encode("utf-8"))
    return starts


def expected_labels(values):
    distinct = set(values)
    if all(re.fullmatch(r"[+-]?[0-9]+", v) for v in distinct):
        return tuple(sorted(distinct, key=int))
    return tuple(sorted(distinct))


# ------------------------------------------------------------------------------ strategies
ODD_WHITESPACE = " \t\n\r\u00a0\u2000\u3000\u2028\u2029\x0b\x0c\x1c\x1d\x85\ufeff\u200b"
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)
padding = st.text(alphabet=ODD_WHITESPACE, max_size=4)
texts = st.one_of(
    any_text.filter(lambda s: s.strip()),
    st.tuples(padding, any_text.filter(lambda s: s.strip()), padding).map("".join),
)
ids = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12).filter(lambda s: s.strip())
labels = st.sampled_from(["neg", "pos", "neutral ", "ラベル", "10", "9", "-1", "é"])


@st.composite
def datasets(draw, fields=2, min_size=1):
    row_ids = draw(st.lists(ids, min_size=min_size, max_size=12, unique=True))
    return [
        (
            row_id,
            tuple(draw(texts) for _ in range(fields)),
            tuple(draw(texts) for _ in range(fields)),
            draw(labels),
        )
        for row_id in row_ids
    ]


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ round trips
@SETTINGS
@given(datasets(), st.sampled_from(FORMATS), st.booleans(), st.randoms(use_true_random=False))
def test_two_file_round_trip(data, fmt, ensure_ascii, rng):
    header = ["id", "premise", "hypothesis", "label"]
    english_order = list(data)
    rng.shuffle(english_order)  # pairing is by id, not by position
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"sw.{fmt}"
        english = Path(tmp) / f"en.{fmt}"
        write(target, fmt, header, [(i, *t, label) for i, t, _, label in data], ensure_ascii)
        write(english, fmt, header[:3], [(i, *e) for i, _, e, _ in english_order], ensure_ascii)
        config = ParallelConfig(
            "sw", splits={"train": DataFiles(target, english)}, text_columns=("premise", "hypothesis")
        )
        task = get_task("parallel", config)
        examples = task.load("sw", "train")
        english_examples = task.load("en", "train")
    names = expected_labels([label for *_, label in data])
    assert task.label_names == names
    assert [(x.id, x.texts, x.english, names[x.label]) for x in examples] == [(i, t, e, label) for i, t, e, label in data]
    assert [(x.id, x.texts, x.english, x.label) for x in english_examples] == [
        (x.id, x.english, None, x.label) for x in examples
    ]


@SETTINGS
@given(datasets(fields=1, min_size=3), st.sampled_from(FORMATS))
def test_one_file_round_trip_and_split(data, fmt):
    header = ["uid", "text_sw", "text_en", "y"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"all.{fmt}"
        write(path, fmt, header, [(i, t[0], e[0], label) for i, t, e, label in data])
        config = ParallelConfig(
            "sw", data=DataFiles(path), id_column="uid", text_columns="text_sw",
            english_columns="text_en", label_column="y", proportions=(0.6, 0.2, 0.2),
        )
        task = get_task("parallel", config)
        splits = {s: task.load("sw", s) for s in ("train", "validation", "test")}
        again = task.load("sw", "test")
    assert again == splits["test"]
    n = len(data)
    assert [len(v) for v in splits.values()] == [round(n * 0.6), round(n * 0.8) - round(n * 0.6), n - round(n * 0.8)]
    names = task.label_names
    loaded = {x.id: (x.texts, x.english, names[x.label]) for v in splits.values() for x in v}
    assert len(loaded) == n
    assert loaded == {i: (t, e, label) for i, t, e, label in data}
    # file order is kept within a split
    order = [i for i, *_ in data]
    for v in splits.values():
        positions = [order.index(x.id) for x in v]
        assert positions == sorted(positions)


@SETTINGS
@given(datasets(fields=1, min_size=1), st.sampled_from(FORMATS), st.data())
def test_empty_text_names_file_and_row(data, fmt, draw):
    bad = draw.draw(st.integers(0, len(data) - 1))
    blank = draw.draw(st.text(alphabet=ODD_WHITESPACE.replace("\ufeff", "").replace("\u200b", ""), max_size=3))
    rows = [(i, blank if k == bad else t[0], label) for k, (i, t, _, label) in enumerate(data)]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"sw.{fmt}"
        english = Path(tmp) / f"en.{fmt}"
        starts = write(target, fmt, ["id", "text", "label"], rows)
        write(english, fmt, ["id", "text"], [(i, e[0]) for i, _, e, _ in data])
        task = get_task("parallel", ParallelConfig("sw", splits={"test": DataFiles(target, english)}, labels=("neg", "pos", "neutral ", "ラベル", "10", "9", "-1", "é")))
        with pytest.raises(DataError) as err:
            task.load("sw", "test")
    assert str(err.value).startswith(f"{target}, row {starts[bad]}: empty text in column 'text'")


@pytest.mark.parametrize("fmt", FORMATS)
def test_very_long_texts(tmp_path, fmt):
    long_text = ("ʻŌlelo\t„x“ " * 40_000)[:400_000]  # beyond csv's default 131,072-character field limit
    target, english = tmp_path / f"sw.{fmt}", tmp_path / f"en.{fmt}"
    write(target, fmt, ["id", "text", "label"], [("1", long_text, "a"), ("2", "short", "b")])
    write(english, fmt, ["id", "text"], [("2", "short en"), ("1", long_text[::-1])])
    task = get_task("parallel", {"language": "haw", "train": {"target": str(target), "english": str(english)}})
    examples = task.load("haw", "train")
    assert examples[0].texts == (long_text,) and examples[0].english == (long_text[::-1],)
    assert task.label_names == ("a", "b")


# ------------------------------------------------------------------------------ behaviour
def test_labels_inferred_from_train_and_checked_elsewhere(tmp_path):
    train = write_csv(tmp_path / "train.csv", ["id", "text", "text_en", "label"], [(1, "a", "A", "2"), (2, "b", "B", "10"), (3, "c", "C", "2")])
    test = write_csv(tmp_path / "test.csv", ["id", "text", "text_en", "label"], [(4, "d", "D", "3")])
    task = get_task("parallel", {"language": "sw", "train": str(train), "test": str(test), "english_columns": "text_en"})
    assert isinstance(task, Task)
    assert task.label_names == ("2", "10")  # numeric order
    assert [x.label for x in task.load("sw", "train")] == [0, 1, 0]
    with pytest.raises(DataError, match=r"test\.csv, row 2: unknown label '3'.*label set is 2, 10"):
        task.load("sw", "test")


def test_label_only_in_english_file(tmp_path):
    target = write_jsonl(tmp_path / "sw.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    english = write_csv(tmp_path / "en.csv", ["id", "text", "label"], [("b", "Y", "pos"), ("a", "X", "neg")])
    task = get_task("parallel", ParallelConfig("sw", splits={"train": DataFiles(target, english)}))
    assert [(x.id, x.english, task.label_names[x.label]) for x in task.load("sw", "train")] == [
        ("a", ("X",), "neg"), ("b", ("Y",), "pos"),
    ]


def test_group_column_keeps_groups_together(tmp_path):
    rows = [(i, f"t{i}", f"e{i}", f"premise {i // 3}", ["x", "y", "z"][i % 3]) for i in range(60)]
    path = write_csv(tmp_path / "all.tsv", ["id", "t", "e", "premise", "label"], rows, delimiter="\t")
    task = get_task("parallel", {
        "language": "sw", "data": str(path), "text_columns": ["t"], "english_columns": ["e"],
        "group_column": "premise", "proportions": [0.5, 0.25, 0.25],
    })
    group_of = {str(i): p for i, _, _, p, _ in rows}
    seen = {}
    for split in ("train", "validation", "test"):
        for x in task.load("sw", split):
            assert seen.setdefault(group_of[x.id], split) == split
    assert sorted(list(seen.values()).count(s) for s in ("train", "validation", "test")) == [5, 5, 10]


def test_from_dict_resolves_relative_paths(tmp_path):
    write_csv(tmp_path / "d" / "sw.csv", ["id", "text", "label"], [(1, "a", "l")])
    write_csv(tmp_path / "d" / "en.csv", ["id", "text"], [(1, "A")])
    config = ParallelConfig.from_dict(
        {"language": "sw", "validation": {"target": "d/sw.csv", "english": "d/en.csv"}, "labels": ["l", "m"]},
        base_dir=tmp_path,
    )
    assert config.splits["validation"].target == tmp_path / "d" / "sw.csv"
    task = get_task("parallel", config)
    assert task.splits("sw") == ("validation",)
    assert task.load("sw", "validation")[0].english == ("A",)
    assert task.metric([1], task.load("sw", "validation")) == {"accuracy": 0.0, "macro_f1": 0.0}
