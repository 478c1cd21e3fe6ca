import json

import pytest

from flare.errors import DataError
from flare.translation.cache import TranslationCache, cache_file, settings_id

SETTINGS = {"model": "m", "num_beams": 1}


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_round_trip_and_settings_in_key(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = TranslationCache(path, SETTINGS)
    cache.add_many([("hello", "halo"), ('ünï\u0000code "q"', "x")])
    again = TranslationCache(path, SETTINGS)
    assert again.get("hello") == "halo" and again.get('ünï\u0000code "q"') == "x"
    other = TranslationCache(path, {**SETTINGS, "num_beams": 4})
    assert other.get("hello") is None  # other settings: never reused
    assert settings_id(SETTINGS) != settings_id({**SETTINGS, "num_beams": 4})
    assert [e["text"] for e in lines(path)] == ["hello", 'ünï\u0000code "q"']


def test_truncated_last_line_is_ignored_then_cut_off(tmp_path):
    path = tmp_path / "c.jsonl"
    TranslationCache(path, SETTINGS).add_many([("a", "A"), ("b", "B")])
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 7])  # a run killed in the middle of a write
    cache = TranslationCache(path, SETTINGS)
    assert cache.dropped_tail and cache.get("a") == "A" and cache.get("b") is None
    cache.add_many([("b", "B2")])
    assert [e["translation"] for e in lines(path)] == ["A", "B2"]  # no broken line left
    assert not TranslationCache(path, SETTINGS).dropped_tail


def test_unreadable_last_line_with_newline_is_tolerated(tmp_path):
    path = tmp_path / "c.jsonl"
    TranslationCache(path, SETTINGS).add_many([("a", "A")])
    with open(path, "ab") as handle:
        handle.write(b'{"key": "abc", "transl\n')
    cache = TranslationCache(path, SETTINGS)
    assert cache.dropped_tail and cache.get("a") == "A"
    cache.add_many([("c", "C")])
    assert [e["translation"] for e in lines(path)] == ["A", "C"]


def test_damaged_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "c.jsonl"
    TranslationCache(path, SETTINGS).add_many([("a", "A")])
    with open(path, "ab") as handle:
        handle.write(b"garbage\n")
    TranslationCache(path, SETTINGS).add_many([("b", "B")])  # tail garbage is cut off first
    assert len(lines(path)) == 2
    with open(path, "ab") as handle:
        handle.write(b"garbage\n")
    with open(path, "ab") as handle:
        handle.write((json.dumps({"key": "k", "translation": "t"}) + "\n").encode())
    with pytest.raises(DataError, match="row 3"):
        TranslationCache(path, SETTINGS)


def test_two_writers_in_one_process_keep_each_others_lines(tmp_path):
    path = tmp_path / "c.jsonl"
    one = TranslationCache(path, SETTINGS)
    two = TranslationCache(path, {**SETTINGS, "num_beams": 2})
    one.add_many([("a", "A1")])
    two.add_many([("a", "A2")])
    one.add_many([("b", "B1")])
    assert [e["translation"] for e in lines(path)] == ["A1", "A2", "B1"]


def test_cache_file_names(tmp_path):
    a = cache_file(tmp_path, "facebook/nllb-200-distilled-600M", "en", "id")
    b = cache_file(tmp_path, "facebook/nllb-200-3.3B", "en", "id")
    assert a.name == "en-id.jsonl" and a.parent != b.parent
    assert a.parent.name.startswith("facebook_nllb-200-distilled-600M-")
