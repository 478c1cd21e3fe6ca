"""`flare data fetch`: each task's download + layout from file:// copies in the upstream formats
(built here in tmp_path; no network), atomic failure, SOURCE.txt, and the data-root search."""

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tasks_testdata import squad, write_csv, write_json
from flare.errors import ConfigError, DataError
from flare.tasks import data_root as data_root_module
from flare.tasks import fetch, get_task, nusax
from flare.tasks.data_root import find_data_root
from flare.tasks.fetch import fetch_task_data
from flare.tasks.registry import SOURCES


def use_urls(monkeypatch, task, **urls):
    """Point the task's URL table at local copies."""
    monkeypatch.setitem(SOURCES, task, dataclasses.replace(SOURCES[task], urls=urls))


def all_splits(task, language, root):
    return [e for split in task.splits(language) for e in task.load(language, split, root)]


def leftovers(root: Path) -> list[str]:
    """Anything in `root` but the task folders and the lock files."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


# ------------------------------------------------------------------------------ upstream copies
NUSAX_ROWS = [(str(i), f"text {i}", ("negative", "neutral", "positive")[i % 3]) for i in range(1, 10)]


@pytest.fixture
def nusax_upstream(tmp_path, monkeypatch):
    """github IndoNLP/nusax at a commit: datasets/sentiment/<language>/{train,valid,test}.csv."""
    base = tmp_path / "upstream" / "nusax" / "datasets"
    for folder, prefix in (("english", "en "), ("javanese", "jv "), ("sundanese", "su ")):
        for name in ("train.csv", "valid.csv", "test.csv"):
            write_csv(base / "sentiment" / folder / name, ["id", "text", "label"],
                      [(i, prefix + text, label) for i, text, label in NUSAX_ROWS])
    (base / "LICENSE").write_text("CC BY-SA 4.0\n", encoding="utf-8")
    use_urls(monkeypatch, "nusax", csv=(base / "sentiment").as_uri() + "/{folder}/{file}",
             license=(base / "LICENSE").as_uri())
    return base


XNLI_HEADER = ["language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
               "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID", "genre", "label1", "label2",
               "label3", "label4", "label5", "sentence1_tokenized", "sentence2_tokenized", "match"]
XNLI_PREMISES = 6
XNLI_LABELS = ("neutral", "contradiction", "entailment")


def xnli_line(language, k, label):
    premise, hypothesis = f"{language} premise {k // 3}", f"{language} hypothesis {k}"
    values = {"language": language, "gold_label": label, "sentence1": premise, "sentence2": hypothesis,
              "pairID": str(k), "promptID": str(k // 3)}
    return "\t".join(values.get(column, "x") for column in XNLI_HEADER)


@pytest.fixture
def xnli_upstream(tmp_path, monkeypatch):
    """XNLI-1.0.zip: XNLI-1.0/xnli.dev.tsv, all languages in one TSV with a header (plus the
    __MACOSX copy that the real zip carries)."""
    lines = ["\t".join(XNLI_HEADER)]
    for language in ("ar", "de", "en"):  # grouped by language, as upstream
        lines += [xnli_line(language, k, XNLI_LABELS[k % 3]) for k in range(3 * XNLI_PREMISES)]
    archive = tmp_path / "upstream" / "XNLI-1.0.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("XNLI-1.0/xnli.dev.tsv", "\n".join(lines) + "\n")
        bundle.writestr("__MACOSX/XNLI-1.0/._xnli.dev.tsv", b"\x00\x05junk")
        bundle.writestr("XNLI-1.0/xnli.test.tsv", "\t".join(XNLI_HEADER) + "\n")
    use_urls(monkeypatch, "xnli", zip=archive.as_uri())
    return archive


def goldp_questions(language, n):
    out = []
    for i in range(n):
        context = f"{language} context number {i} with answer{i} inside"
        out.append((f"{language}-{1000 + i}-0" if i % 2 else f"{language}--{1000 + i}-0",
                    f"{language} question {i}?", context, [(f"answer{i}", context.index(f"answer{i}"))]))
    return out


@pytest.fixture
def tydiqa_upstream(tmp_path, monkeypatch):
    """tydiqa-goldp-v1.1-train.json (all languages mixed, ids '<language>-<n>-<k>') and
    tydiqa-goldp-v1.1-dev.tgz (tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-<language>.json)."""
    up = tmp_path / "upstream" / "tydiqa"
    train = squad(goldp_questions("english", 12) + goldp_questions("swahili", 5) + goldp_questions("arabic", 4))
    train["data"] = train["data"][::2] + train["data"][1::2]  # languages interleaved
    train["version"] = "TyDiQA-GoldP-1.1-for-SQuAD-1.1"
    write_json(up / "tydiqa-goldp-v1.1-train.json", train)
    archive = up / "tydiqa-goldp-v1.1-dev.tgz"
    with tarfile.open(archive, "w:gz") as bundle:
        for name in ("english", "swahili", "arabic"):
            data = json.dumps(squad(goldp_questions(name, 3))).encode()
            info = tarfile.TarInfo(f"tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-{name}.json")
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    use_urls(monkeypatch, "tydiqa", train=(up / "tydiqa-goldp-v1.1-train.json").as_uri(), dev=archive.as_uri())
    return up


def xquad_questions(language):
    out = []
    for i in range(10):
        context = f"{language} paragraph {i}: the answer is word{i}."
        out.append((f"q{i}", f"{language} question {i}?", context, [(f"word{i}", context.index(f"word{i}"))]))
    return out


@pytest.fixture
def xquad_upstream(tmp_path, monkeypatch):
    """github google-deepmind/xquad: xquad.<lang>.json, parallel by question id."""
    up = tmp_path / "upstream" / "xquad"
    for language in ("en", "de"):
        write_json(up / f"xquad.{language}.json", squad(xquad_questions(language)))
    use_urls(monkeypatch, "xquad", json=up.as_uri() + "/xquad.{lang}.json")
    return up


# -------------------------------------------------------------------------------- each task
def test_nusax_fetch_and_load(tmp_path, nusax_upstream):
    root = fetch_task_data("nusax", tmp_path / "data", ["javanese"], progress=False)
    assert root == tmp_path / "data"
    folder = root / "nusax"
    assert sorted(p.name for p in folder.iterdir()) == ["LICENSE", "SOURCE.txt", "english", "javanese"]
    for name in ("train.csv", "valid.csv", "test.csv"):  # copied unchanged
        assert (folder / "javanese" / name).read_bytes() == (nusax_upstream / "sentiment" / "javanese" / name).read_bytes()
    task = get_task("nusax")
    examples = task.load("jav", "validation", root)
    assert [(e.id, e.texts[0], task.label_names[e.label]) for e in examples] == [
        (i, "jv " + text, label) for i, text, label in NUSAX_ROWS]
    assert examples[0].english == ("en text 1",)


def test_xnli_fetch_converts_to_per_language_files(tmp_path, xnli_upstream):
    root = fetch_task_data("xnli", tmp_path / "data", ["de"], progress=False)
    folder = root / "xnli"
    assert sorted(p.name for p in folder.iterdir()) == ["SOURCE.txt", "dev-de.tsv", "dev-en.tsv"]
    lines = (folder / "dev-de.tsv").read_text(encoding="utf-8").split("\n")
    assert lines[:2] == ["de premise 0\tde hypothesis 0\tneutral", "de premise 0\tde hypothesis 1\tcontradiction"]
    assert lines[-1] == "" and len(lines) == 3 * XNLI_PREMISES + 1
    task = get_task("xnli")
    german = sorted(all_splits(task, "de", root), key=lambda e: e.id)
    assert len(german) == 3 * XNLI_PREMISES
    for k, example in enumerate(german):  # row k stays row k, parallel with English
        assert example.id == f"dev-{k + 1:04d}"
        assert example.texts == (f"de premise {k // 3}", f"de hypothesis {k}")
        assert example.english == (f"en premise {k // 3}", f"en hypothesis {k}")
        assert task.label_names[example.label] == XNLI_LABELS[k % 3]


def test_xnli_missing_language_rows_is_an_error(tmp_path, xnli_upstream):
    with pytest.raises(DataError, match="no rows for language 'fr'"):
        fetch_task_data("xnli", tmp_path / "data", ["fr"], progress=False)
    assert not (tmp_path / "data" / "xnli").exists()


def test_tydiqa_fetch_splits_train_by_language(tmp_path, tydiqa_upstream):
    root = fetch_task_data("tydiqa", tmp_path / "data", ["sw"], progress=False)
    folder = root / "tydiqa"
    assert sorted(p.name for p in folder.iterdir()) == [
        "SOURCE.txt", "tydiqa.goldp.en.dev.json", "tydiqa.goldp.en.train.json", "tydiqa.goldp.sw.dev.json"]
    train = json.loads((folder / "tydiqa.goldp.en.train.json").read_text(encoding="utf-8"))
    ids = [q["id"] for a in train["data"] for p in a["paragraphs"] for q in p["qas"]]
    assert len(ids) == 12 and all(i.startswith("english-") for i in ids)
    assert train["version"] == "TyDiQA-GoldP-1.1-for-SQuAD-1.1"
    task = get_task("tydiqa")
    english = task.load("en", "train", root) + task.load("en", "validation", root)
    assert sorted(e.id for e in english) == sorted(ids)  # unique upstream ids are kept
    assert all(e.answers for e in english)
    swahili = task.load("sw", "test", root)
    assert [e.question for e in swahili] == [f"swahili question {i}?" for i in range(3)]
    assert swahili[0].answers[0].text == "answer0"
    assert len(task.load("en", "test", root)) == 3


def test_xquad_fetch_and_load(tmp_path, xquad_upstream):
    root = fetch_task_data("xquad", tmp_path / "data", ["DE"], progress=False)
    assert (root / "xquad" / "xquad.de.json").read_bytes() == (xquad_upstream / "xquad.de.json").read_bytes()
    examples = all_splits(get_task("xquad"), "de", root)
    assert sorted(e.id for e in examples) == [f"q{i}" for i in range(10)]
    assert all(e.answers and e.english.id == e.id for e in examples)


# -------------------------------------------------------------------- provenance and re-runs
def test_source_txt_records_url_and_sha256(tmp_path, xquad_upstream):
    root = fetch_task_data("xquad", tmp_path / "data", ["de"], progress=False)
    text = (root / "xquad" / "SOURCE.txt").read_text(encoding="utf-8")
    for language in ("en", "de"):
        path = xquad_upstream / f"xquad.{language}.json"
        assert f"url: {path.as_uri()}\n  sha256: {hashlib.sha256(path.read_bytes()).hexdigest()}" in text
    assert "date: 20" in text and "license: CC BY-SA 4.0" in text


def test_second_fetch_keeps_earlier_languages_and_skips_present_files(tmp_path, xquad_upstream, monkeypatch):
    messages = []
    root = fetch_task_data("xquad", tmp_path / "data", ["en"], progress=False)
    root = fetch_task_data("xquad", root, ["de"], progress=False, log=messages.append)
    assert {p.name for p in (root / "xquad").glob("*.json")} == {"xquad.en.json", "xquad.de.json"}
    assert (root / "xquad" / "SOURCE.txt").read_text(encoding="utf-8").count("task: xquad") == 2
    use_urls(monkeypatch, "xquad", json="file:///nonexistent/xquad.{lang}.json")
    fetch_task_data("xquad", root, ["de"], progress=False, log=messages.append)  # nothing to download
    assert "already in" in messages[-1]
    with pytest.raises(DataError, match="nonexistent"):
        fetch_task_data("xquad", root, ["de"], progress=False, force=True)


def test_default_destination_is_the_cache(tmp_path, xquad_upstream, monkeypatch):
    monkeypatch.setenv("FLARE_CACHE", str(tmp_path / "cache"))
    assert fetch_task_data("xquad", languages=["de"], progress=False) == tmp_path / "cache" / "data"
    assert (tmp_path / "cache" / "data" / "xquad" / "xquad.de.json").is_file()


def test_progress_bar(tmp_path, xquad_upstream, capsys, monkeypatch):
    fetch_task_data("xquad", tmp_path / "data", ["en"], progress=True)  # not a terminal: no bar
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr("rich.console.Console.is_terminal", property(lambda self: True))
    fetch_task_data("xquad", tmp_path / "data", ["de"], progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "xquad.de.json" in err  # the bar is drawn on stderr


def test_unknown_task_or_language(tmp_path):
    with pytest.raises(ConfigError, match="fetchable tasks: nusax, xnli, tydiqa, xquad"):
        fetch_task_data("parallel", tmp_path)
    with pytest.raises(ConfigError, match="unknown language 'xx'"):
        fetch_task_data("xquad", tmp_path, ["xx"])


# ------------------------------------------------------------------------------------ failures
def test_failing_url_names_it_and_leaves_nothing(tmp_path, xquad_upstream):
    (xquad_upstream / "xquad.de.json").unlink()
    url = xquad_upstream.as_uri() + "/xquad.de.json"
    with pytest.raises(DataError) as err:
        fetch_task_data("xquad", tmp_path / "data", ["de"], progress=False)
    message = str(err.value)
    assert f"downloading {url} failed" in message
    assert str(tmp_path / "data" / "xquad") in message and "docs/data.md" in message and "--data-dir" in message
    assert leftovers(tmp_path / "data") == []  # no task folder, no partial or scratch folder


def test_failure_leaves_an_existing_folder_as_it_was(tmp_path, xquad_upstream):
    root = fetch_task_data("xquad", tmp_path / "data", ["en"], progress=False)
    before = {p.name: p.read_bytes() for p in (root / "xquad").iterdir()}
    (xquad_upstream / "xquad.de.json").unlink()
    with pytest.raises(DataError):
        fetch_task_data("xquad", root, ["de"], progress=False)
    assert {p.name: p.read_bytes() for p in (root / "xquad").iterdir()} == before
    assert leftovers(root) == ["xquad"]


def test_failure_midway_through_many_files(tmp_path, nusax_upstream):
    (nusax_upstream / "sentiment" / "javanese" / "test.csv").unlink()
    with pytest.raises(DataError, match="javanese/test.csv"):
        fetch_task_data("nusax", tmp_path / "data", ["jav"], progress=False)
    assert leftovers(tmp_path / "data") == []


def test_not_the_expected_content(tmp_path, xquad_upstream, nusax_upstream):
    (xquad_upstream / "xquad.de.json").write_text("<html>rate limited</html>", encoding="utf-8")
    with pytest.raises(DataError, match="not a JSON document"):
        fetch_task_data("xquad", tmp_path / "data", ["de"], progress=False)
    (nusax_upstream / "sentiment" / "javanese" / "train.csv").write_text("<html>\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected the CSV header id,text,label"):
        fetch_task_data("nusax", tmp_path / "data", ["jav"], progress=False)
    assert leftovers(tmp_path / "data") == []


def test_sha256_mismatch(tmp_path, xnli_upstream, monkeypatch):
    url = xnli_upstream.as_uri()
    monkeypatch.setitem(SOURCES, "xnli", dataclasses.replace(SOURCES["xnli"], sha256={url: "0" * 64}))
    with pytest.raises(DataError, match="expected 0000"):
        fetch_task_data("xnli", tmp_path / "data", ["de"], progress=False)
    assert leftovers(tmp_path / "data") == []


def test_download_leaves_no_partial_file(tmp_path):
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DataError, match="file:///nonexistent/file.bin"):
        fetch.download("file:///nonexistent/file.bin", dest, progress=False)
    assert list((tmp_path / "out").iterdir()) == []
    source = tmp_path / "in.bin"
    source.write_bytes(b"x" * 200_000)
    sha, size = fetch.download(source.as_uri(), dest, progress=False)
    assert dest.read_bytes() == source.read_bytes() and size == 200_000
    assert sha == hashlib.sha256(source.read_bytes()).hexdigest()
    assert list((tmp_path / "out").iterdir()) == [dest]


def test_public_sources_table():
    assert SOURCES["nusax"].urls["csv"].startswith(
        f"https://raw.githubusercontent.com/IndoNLP/nusax/{nusax.NUSAX_COMMIT}/datasets/sentiment/")
    assert SOURCES["xnli"].urls["zip"] == "https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip"
    assert SOURCES["tydiqa"].urls["dev"].startswith("https://storage.googleapis.com/tydiqa/v1.1/")
    assert "google-deepmind/xquad" in SOURCES["xquad"].urls["json"]
    for source in SOURCES.values():
        assert source.license and source.homepage.startswith("https://")
        assert all(url.startswith("https://") for url in source.urls.values())


# ------------------------------------------------------------------------------ data root
@pytest.fixture
def no_shared_data(tmp_path, monkeypatch):
    """No ../shared/data anywhere, no $FLARE_DATA; the cache under tmp_path."""
    work = tmp_path / "project" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(data_root_module, "_PROJECT_ROOT", tmp_path / "project")
    monkeypatch.delenv("FLARE_DATA", raising=False)
    monkeypatch.setenv("FLARE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "data"


def test_find_data_root_finds_the_download_folder(no_shared_data, xquad_upstream):
    fetch_task_data("xquad", languages=["de"], progress=False)
    found = find_data_root(needs="xquad")
    assert found.path == no_shared_data.resolve() and "flare data fetch" in found.found_by
    assert len(get_task("xquad").load("de", "test")) > 0  # the loader finds it by itself


def test_download_folder_comes_after_shared_data(tmp_path, no_shared_data, monkeypatch):
    (no_shared_data / "xnli").mkdir(parents=True)
    assert "flare data fetch" in find_data_root(needs="xnli").found_by
    shared = tmp_path / "shared" / "data"  # ../shared/data next to the project
    (shared / "xnli").mkdir(parents=True)
    assert find_data_root(needs="xnli").path == shared.resolve()
    (tmp_path / "mine" / "xnli").mkdir(parents=True)
    monkeypatch.setenv("FLARE_DATA", str(tmp_path / "mine"))
    assert find_data_root(needs="xnli").found_by == "$FLARE_DATA"


def test_not_found_message_names_places_and_fetch_command(no_shared_data):
    with pytest.raises(DataError) as err:
        find_data_root(needs="tydiqa")
    message = str(err.value)
    assert "flare data fetch tydiqa" in message
    assert str(no_shared_data / "tydiqa") in message and "shared" in message
    assert "--data-dir" in message and "docs/data.md" in message
    with pytest.raises(DataError, match=r"flare data fetch TASK"):
        find_data_root(needs="mydata")


# ------------------------------------------------------------------------------------- CLI
def test_cli_fetch_and_show(tmp_path, xquad_upstream, nusax_root):
    from flare.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["data", "fetch", "xquad", "--to", str(tmp_path / "data"), "--language", "de"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "data")
    assert (tmp_path / "data" / "xquad" / "xquad.de.json").is_file()

    result = runner.invoke(app, ["data", "show", "xquad", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "missing here: ar, el, es, hi, ro, ru, th, tr, vi, zh" in " ".join(result.stdout.split()) and "│ de " in result.stdout
    # the old form, `flare data TASK`, still works
    result = runner.invoke(app, ["data", "nusax", "--data-dir", str(nusax_root)])
    assert result.exit_code == 0, result.output
    assert "│ jav " in result.stdout and "│ 3 " in result.stdout

    result = runner.invoke(app, ["data", "fetch", "xquad", "--to", str(tmp_path / "other"), "-l", "klingon"])
    assert result.exit_code == 2 and "unknown language 'klingon'" in result.output
