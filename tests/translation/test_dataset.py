from dataclasses import dataclass

import pytest

from flare.errors import ConfigError, DataError
from flare.translation import Translator, translate_records


@dataclass(frozen=True)
class Pair:
    id: str
    texts: tuple
    label: int


class Upper:
    def __init__(self):
        self.calls = []

    def translate(self, texts, src, tgt):
        self.calls.append(list(texts))
        return [t.upper() for t in texts]


def test_dicts_and_dataclasses_field_by_field():
    rows = [
        {"premise": "a cat", "hypothesis": "an animal", "label": 0},
        {"premise": "a dog", "hypothesis": "a cat", "label": 2},
    ]
    tr = Upper()
    out, report = translate_records(rows, ["premise", "hypothesis"], tr, "en", "id")
    assert out == [
        {"premise": "A CAT", "hypothesis": "AN ANIMAL", "label": 0},
        {"premise": "A DOG", "hypothesis": "A CAT", "label": 2},
    ]
    assert tr.calls == [["a cat", "a dog"], ["an animal", "a cat"]]  # each field separately
    assert rows[0]["premise"] == "a cat"  # inputs untouched
    assert report.records == 2 and list(report.fields) == ["premise", "hypothesis"]

    out, _ = translate_records(rows, "premise", Upper(), "en", "id", suffix="_translated")
    assert out[0] == {**rows[0], "premise_translated": "A CAT"}

    pairs = [Pair("1", ("a cat", "an animal"), 0), Pair("2", ("one text",), 1)]
    out, _ = translate_records(pairs, ["texts"], Upper(), "en", "id")
    assert out == [Pair("1", ("A CAT", "AN ANIMAL"), 0), Pair("2", ("ONE TEXT",), 1)]


def test_bad_records():
    with pytest.raises(DataError, match="record 1"):
        translate_records([{"t": "a"}, {"t": 3}], ["t"], Upper(), "en", "id")
    with pytest.raises(DataError, match="no field"):
        translate_records([{"t": "a"}], ["x"], Upper(), "en", "id")
    with pytest.raises(ConfigError):
        translate_records([Pair("1", ("a",), 0)], ["texts"], Upper(), "en", "id", suffix="_mt")
    with pytest.raises(ConfigError):
        translate_records([{"t": "a"}], [], Upper(), "en", "id")


def test_report_with_a_cached_tiny_model(nllb_dir, tmp_path):
    rows = [{"text": t} for t in ["the cat sat on the mat", "hello world", "hello world", ""]]
    kwargs = dict(max_new_tokens=5, progress=False, cache_dir=tmp_path)
    out, report = translate_records(rows, ["text"], Translator(str(nllb_dir), **kwargs), "en", "jv")
    assert len(out) == 4 and out[3]["text"] == ""
    assert report.stats.translated == 2 and report.stats.empty == 1
    again, report = translate_records(rows, ["text"], Translator(str(nllb_dir), **kwargs), "en", "jv")
    assert again == out and report.stats.cached == 2 and report.stats.translated == 0
    assert "2 from the cache" in report.summary()
