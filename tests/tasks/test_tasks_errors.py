"""Every bad input raises DataError (or ConfigError) naming the file, the row and what to do."""


import pytest

from tasks_testdata import squad, write_csv, write_json, write_jsonl
from flare.errors import ConfigError, DataError
from flare.tasks import DataFiles, ParallelConfig, get_task
from flare.tasks.readers import read_squad, read_table

HEADER = ["id", "text", "label"]


def error_of(call, *args, kind=DataError):
    with pytest.raises(kind) as err:
        call(*args)
    return str(err.value)


# ------------------------------------------------------------------------------------- NusaX
def test_missing_file(nusax_root):
    path = nusax_root / "nusax" / "javanese" / "valid.csv"
    path.unlink()
    message = error_of(get_task("nusax").load, "jav", "validation", nusax_root)
    assert str(path) in message and "not found" in message and "--data-dir" in message


def test_data_root_without_task_folder(tmp_path):
    message = error_of(get_task("nusax").load, "jav", "train", tmp_path)
    assert str(tmp_path / "nusax" / "english" / "train.csv") in message


def test_unpaired_ids_name_ids_and_both_files(nusax_root):
    target = nusax_root / "nusax" / "javanese" / "train.csv"
    english = nusax_root / "nusax" / "english" / "train.csv"
    write_csv(target, HEADER, [("1", "a", "positive"), ("2", "b", "negative"), ("3", "c", "neutral"), ("77", "d", "neutral")])
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{target}, row 5:")
    assert "'77'" in message and str(english) in message

    write_csv(target, HEADER, [("1", "a", "positive"), ("2", "b", "negative")])
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{english}, row 4:")
    assert "'3'" in message and str(target) in message


def test_unknown_label_names_value_and_label_set(nusax_root):
    for folder in ("english", "javanese"):
        write_csv(nusax_root / "nusax" / folder / "test.csv", HEADER, [("1", "a", "positive"), ("2", "b", "mixed")])
    message = error_of(get_task("nusax").load, "jav", "test", nusax_root)
    path = nusax_root / "nusax" / "javanese" / "test.csv"
    assert message.startswith(f"{path}, row 3:")
    assert "'mixed'" in message and "negative, neutral, positive" in message


def test_label_disagreement(nusax_root):
    write_csv(nusax_root / "nusax" / "javanese" / "test.csv", HEADER, [("1", "a", "negative"), ("2", "b", "negative"), ("3", "c", "neutral")])
    message = error_of(get_task("nusax").load, "jav", "test", nusax_root)
    assert "row 2" in message and "'negative'" in message and "'positive'" in message
    assert str(nusax_root / "nusax" / "english" / "test.csv") in message


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_text(nusax_root, text):
    path = write_csv(nusax_root / "nusax" / "javanese" / "train.csv", HEADER, [("1", "a", "positive"), ("2", text, "negative"), ("3", "c", "neutral")])
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{path}, row 3:") and "empty text" in message


def test_duplicate_id_and_missing_column(nusax_root):
    path = write_csv(nusax_root / "nusax" / "javanese" / "train.csv", HEADER, [("1", "a", "positive"), ("1", "b", "negative")])
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{path}, row 3:") and "appears twice (first at row 2)" in message
    write_csv(path, ["id", "sentence", "label"], [("1", "a", "positive")])
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{path}, row 1:") and "'text'" in message and "id, sentence, label" in message


def test_malformed_csv(nusax_root):
    path = nusax_root / "nusax" / "javanese" / "train.csv"
    path.write_text('id,text,label\n1,a,positive\n2,"unclosed,negative\n3,c,neutral\n', encoding="utf-8")
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{path}, row 3:") and "malformed CSV" in message and "quote" in message
    path.write_text("id,text,label\n1,a,positive\n2,b,c,negative\n", encoding="utf-8")
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{path}, row 3:") and "4 fields where the header has 3" in message


def test_not_utf8(nusax_root):
    path = nusax_root / "nusax" / "javanese" / "train.csv"
    path.write_bytes(b"id,text,label\n1,a,positive\n2,caf\xe9,negative\n")
    message = error_of(get_task("nusax").load, "jav", "train", nusax_root)
    assert message.startswith(f"{path}, row 3:") and "UTF-8" in message


# -------------------------------------------------------------------------------------- XNLI
@pytest.fixture
def xnli_root(tmp_path):
    rows = [("P1", "H1", "entailment"), ("P1", "H2", "neutral"), ("P2", "H3", "contradiction")]
    for lang, prefix in (("en", ""), ("sw", "sw ")):
        (tmp_path / "xnli").mkdir(exist_ok=True)
        (tmp_path / "xnli" / f"dev-{lang}.tsv").write_text(
            "".join(f"{prefix}{p}\t{prefix}{h}\t{label}\n" for p, h, label in rows), encoding="utf-8"
        )
    return tmp_path


def test_xnli_small_root_loads(xnli_root):
    task = get_task("xnli")
    examples = [e for split in ("train", "validation", "test") for e in task.load("sw", split, xnli_root)]
    assert sorted(e.id for e in examples) == ["dev-0001", "dev-0002", "dev-0003"]
    by_id = {e.id: e for e in examples}
    assert by_id["dev-0002"].texts == ("sw P1", "sw H2") and by_id["dev-0002"].english == ("P1", "H2")


def test_xnli_bad_rows(xnli_root):
    path = xnli_root / "xnli" / "dev-sw.tsv"
    path.write_text("a\tb\tentailment\nonly two\tfields\n", encoding="utf-8")
    message = error_of(get_task("xnli").load, "sw", "test", xnli_root)
    assert message.startswith(f"{path}, row 2:") and "expected 3" in message

    path.write_text("a\tb\tentailment\nc\td\tmaybe\n", encoding="utf-8")
    message = error_of(get_task("xnli").load, "sw", "test", xnli_root)
    assert message.startswith(f"{path}, row 2:") and "'maybe'" in message and "entailment, neutral, contradiction" in message

    path.write_text("a\tb\tentailment\n\td\tneutral\n", encoding="utf-8")
    message = error_of(get_task("xnli").load, "sw", "test", xnli_root)
    assert message.startswith(f"{path}, row 2:") and "empty premise" in message


def test_xnli_rows_do_not_pair(xnli_root):
    path = xnli_root / "xnli" / "dev-sw.tsv"
    english = xnli_root / "xnli" / "dev-en.tsv"
    path.write_text("a\tb\tentailment\nc\td\tneutral\n", encoding="utf-8")
    message = error_of(get_task("xnli").load, "sw", "test", xnli_root)
    assert message.startswith(f"{path}, row 3:") and str(english) in message and "2 rows here but 3" in message

    path.write_text("a\tb\tentailment\nc\td\tneutral\ne\tf\tneutral\n", encoding="utf-8")
    message = error_of(get_task("xnli").load, "sw", "test", xnli_root)
    assert message.startswith(f"{path}, row 3:") and "'neutral' here but 'contradiction'" in message
    assert f"row 3 of the English file {english}" in message


# ----------------------------------------------------------------------------------- QA JSON
def test_malformed_json(tmp_path):
    path = tmp_path / "xquad" / "xquad.en.json"
    path.parent.mkdir()
    path.write_text('{"data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
    message = error_of(get_task("xquad").load, "en", "test", tmp_path)
    assert message.startswith(f"{path}, row 2:") and "malformed JSON" in message


def test_answer_not_at_its_offset(tmp_path):
    path = write_json(
        tmp_path / "tydiqa" / "tydiqa.goldp.sw.dev.json",
        squad([("ok-1", "Q?", "Paris is big.", [("Paris", 0)]), ("bad-2", "Q?", "Rome is old.", [("old", 3)])]),
    )
    message = error_of(get_task("tydiqa").load, "sw", "test", tmp_path)
    assert message.startswith(f"{path}: question 'bad-2'")
    assert "'old' is not at answer_start 3" in message and "character offset" in message


def test_squad_structure_errors(tmp_path):
    path = write_json(tmp_path / "a.json", {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q", "question": "?", "answers": []}]}]}]})
    assert "question 'q'" in error_of(read_squad, path) and "no answers" in error_of(read_squad, path)
    write_json(path, {"data": [{"paragraphs": [{"context": "ctx", "qas": [{"id": "q", "question": "?", "answers": [{"text": "c", "answer_start": "0"}]}]}]}]})
    assert "'answer_start' must be a int" in error_of(read_squad, path)
    write_json(path, squad([("q", "?", "ab", [("a", 0)]), ("q", "?", "ab", [("b", 1)])]))
    message = error_of(read_squad, path)
    assert "question 'q' (data[1].paragraphs[0].qas[0]): id already used at data[0]" in message
    write_json(path, {"version": "1.1"})
    assert "no 'data' list" in error_of(read_squad, path)


def test_blanked_answers(tmp_path):
    path = write_json(tmp_path / "a.json", squad([("q1", "?", "ab", [("", 0)]), ("q2", "?", "ab", [("", 0)])]))
    message = error_of(read_squad, path)
    assert message.startswith(f"{path}: 2 gold answers are empty") and "removed" in message
    assert [q.answers for q in read_squad(path, allow_unanswered=True)] == [(), ()]


def test_xquad_ids_do_not_pair(tmp_path):
    english = write_json(tmp_path / "xquad" / "xquad.en.json", squad([("a", "Q?", "x y", [("x", 0)]), ("b", "Q?", "x y", [("y", 2)])]))
    target = write_json(tmp_path / "xquad" / "xquad.de.json", squad([("a", "F?", "x y", [("x", 0)]), ("z", "F?", "x y", [("y", 2)])]))
    message = error_of(get_task("xquad").load, "de", "train", tmp_path)
    assert message.startswith(f"{target}:") and "'z'" in message and str(english) in message


# ---------------------------------------------------------------------------------- user data
def test_jsonl_malformed_and_not_object(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": 1, "text": "a", "label": "x"}\n{"id": 2, "text": "b"\n', encoding="utf-8")
    message = error_of(read_table, path)
    assert message.startswith(f"{path}, row 2:") and "malformed JSON" in message
    path.write_text('{"id": 1}\n\n[1, 2]\n', encoding="utf-8")
    message = error_of(read_table, path)
    assert message.startswith(f"{path}, row 3:") and "expected a JSON object" in message


def test_user_data_errors(tmp_path):
    target = write_jsonl(tmp_path / "sw.jsonl", [{"id": 1, "text": "a", "label": "yes"}, {"id": 2, "text": 5, "label": "no"}])
    english = write_jsonl(tmp_path / "en.jsonl", [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}])
    config = ParallelConfig("sw", splits={"train": DataFiles(target, english)})
    message = error_of(get_task, "parallel", config)  # the label set is inferred when the task is built
    assert message.startswith(f"{target}, row 2:") and "expected a string" in message

    write_jsonl(target, [{"id": 1, "text": "a", "label": "yes"}, {"id": 2, "text": "b"}])
    message = error_of(get_task, "parallel", config)
    assert message.startswith(f"{target}, row 2:") and "no 'label' field" in message

    write_jsonl(target, [{"id": 1, "text": "a", "label": "yes"}, {"id": 2, "text": "b", "label": "maybe"}])
    task = get_task("parallel", ParallelConfig("sw", splits={"train": DataFiles(target, english)}, labels=("yes", "no")))
    message = error_of(task.load, "sw", "train")
    assert message.startswith(f"{target}, row 2:") and "'maybe'" in message and "yes, no" in message


def test_user_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="either per-split files"):
        ParallelConfig("sw")
    with pytest.raises(ConfigError, match="needs english_columns"):
        ParallelConfig("sw", data=DataFiles(tmp_path / "x.csv"))
    with pytest.raises(ConfigError, match="cannot be 'en'"):
        ParallelConfig("en", data=DataFiles(tmp_path / "x.csv", tmp_path / "y.csv"))
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        ParallelConfig("sw", splits={"dev": DataFiles(tmp_path / "x.csv", tmp_path / "y.csv")})
    with pytest.raises(ConfigError, match="one to one"):
        ParallelConfig("sw", data=DataFiles(tmp_path / "x.csv"), text_columns=("a", "b"), english_columns=("c",))
    with pytest.raises(ConfigError, match="unknown user-data option 'sep'"):
        ParallelConfig.from_dict({"language": "sw", "data": "x.csv", "sep": ","})
    with pytest.raises(ConfigError, match="cannot tell the format"):
        read_table(tmp_path / "data.txt")
    with pytest.raises(ConfigError, match="without a train split; give labels"):
        get_task("parallel", {"language": "sw", "test": {"target": "t.csv", "english": "e.csv"}})
    task = get_task("parallel", {"language": "sw", "test": {"target": "t.csv", "english": "e.csv"}, "labels": ["a"]})
    with pytest.raises(ConfigError, match="valid codes: sw, en"):
        task.load("de", "test")
