"""Fetch task data from its public home and lay it out as the task loaders expect.

``fetch_task_data(task, destination=None, languages=None)`` downloads the public copies of
one task (the table :data:`SOURCES`: URLs, homepage, license), converts them where the
upstream layout differs from ours, and writes ``<destination>/<task>/...``:

    nusax/<language folder>/{train,valid,test}.csv, LICENSE     (CSV files copied unchanged)
    xnli/dev-<lang>.tsv          from xnli.dev.tsv of the XNLI 1.0 zip (all languages in one
                                 TSV) -> premise<TAB>hypothesis<TAB>label, rows in file order
    tydiqa/tydiqa.goldp.<lang>.dev.json   the per-language GoldP dev files of the dev archive
    tydiqa/tydiqa.goldp.en.train.json     the English questions of the (mixed) GoldP train file
    xquad/xquad.<lang>.json      copied unchanged

The default destination is ``$FLARE_CACHE/data``, else ``~/.cache/flare/data``
(:func:`flare.tasks.data_root.download_root`), which ``find_data_root`` searches after
``../shared/data``.  English is always fetched (the loaders pair every language with it).

Every download is streamed with a progress bar (stderr) into a scratch file and its SHA-256
is recorded in ``<task>/SOURCE.txt`` (URL, date, size, digest; one block per fetch).  The task
folder is built in a hidden temporary folder and renamed into place at the end, so a failed
download or conversion leaves the destination as it was (no half-written folder); files of
languages fetched earlier are kept.  Network failures raise a DataError that names the URL and
says how to place the files by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from flare.errors import ConfigError, DataError
from flare.tasks.data_root import download_root

NUSAX_COMMIT = "75b0be5d982348332509f296e10d9bf9cb66d60f"  # IndoNLP/nusax, 2023-05-08
_NUSAX_RAW = f"https://raw.githubusercontent.com/IndoNLP/nusax/{NUSAX_COMMIT}/datasets"
CHUNK = 1 << 16
TIMEOUT_S = 60
USER_AGENT = "flare-xl (python urllib; flare data fetch)"


@dataclass(frozen=True)
class TaskSource:
    """Where the public copies of one task live (``urls``: name -> URL or URL template)."""

    task: str
    homepage: str
    license: str
    urls: Mapping[str, str]
    #: URL -> expected SHA-256, where known; a mismatch is a DataError (empty: digests are
    #: only recorded, in SOURCE.txt)
    sha256: Mapping[str, str] = field(default_factory=dict)


SOURCES: dict[str, TaskSource] = {
    "nusax": TaskSource(
        "nusax",
        homepage="https://github.com/IndoNLP/nusax",
        license="CC BY-SA 4.0 (NusaX, Winata et al., 2023)",
        urls={
            "csv": _NUSAX_RAW + "/sentiment/{folder}/{file}",
            "license": _NUSAX_RAW + "/LICENSE",
        },
    ),
    "xnli": TaskSource(
        "xnli",
        homepage="https://github.com/facebookresearch/XNLI",
        license="CC BY-NC 4.0 (XNLI, Conneau et al., 2018)",
        urls={"zip": "https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip"},
    ),
    "tydiqa": TaskSource(
        "tydiqa",
        homepage="https://github.com/google-research-datasets/tydiqa",
        license="Apache-2.0 (TyDi QA, Clark et al., 2020)",
        urls={
            "train": "https://storage.googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-train.json",
            "dev": "https://storage.googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-dev.tgz",
        },
    ),
    "xquad": TaskSource(
        "xquad",
        homepage="https://github.com/google-deepmind/xquad",
        license="CC BY-SA 4.0 (XQuAD, Artetxe et al., 2020)",
        urls={"json": "https://raw.githubusercontent.com/google-deepmind/xquad/master/xquad.{lang}.json"},
    ),
}

#: TyDiQA-GoldP names its languages in file names and question-id prefixes
TYDIQA_NAMES = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}
NUSAX_FILES = ("train.csv", "valid.csv", "test.csv")
XNLI_MEMBER = "xnli.dev.tsv"
XNLI_LABELS = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction",
               "contradictory": "contradiction"}  # the MultiNLI spelling, should it appear


# ---------------------------------------------------------------------------------- downloading
def _no_network_hint(url: str, where: Path | None) -> str:
    place = f"into {where}" if where is not None else "into a data root"
    return (
        f"no network, or the address has moved? Get {url} by other means and place the files "
        f"{place}, laid out as docs/data.md ('Fetching task data') says, or pass --data-dir / "
        f"set FLARE_DATA to a folder that already holds them"
    )


@contextlib.contextmanager
def _bar(label: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A byte-counting progress bar on stderr (nothing when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    console = Console(stderr=True)
    if not console.is_terminal:  # logs and CI: the "downloaded ..." line says enough
        yield lambda n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def download(
    url: str,
    dest: Path,
    expected_sha256: str | None = None,
    progress: bool = True,
    place: Path | None = None,
) -> tuple[str, int]:
    """Stream `url` into `dest` (via a temporary file next to it); return (sha256, bytes).

    `dest` appears only once the whole body has arrived (and matched `expected_sha256` when
    given).  Any failure raises DataError naming the URL; `place` is the folder named in the
    hint (where the user could put the files by hand).
    """
    dest = Path(dest)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    except ValueError as err:
        raise DataError(f"cannot download {url}: {err}", hint="check the URL in flare.tasks.download.SOURCES") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            label = PurePosixPath(urlparse(url).path).name or url
            with _bar(label, total, progress) as advance:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    advance(len(chunk))
        if total is not None and size != total:
            raise DataError(
                f"downloading {url} stopped after {size} of {total} bytes",
                hint=_no_network_hint(url, place),
            )
        sha = digest.hexdigest()
        if expected_sha256 and sha != expected_sha256.lower():
            raise DataError(
                f"{url} has SHA-256 {sha}, expected {expected_sha256}",
                hint="the upstream file changed or the download was corrupted; try again, or "
                     "check the file and update the digest in flare.tasks.download.SOURCES",
            )
        os.replace(tmp, dest)
        return sha, size
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"downloading {url} failed: {_reason(err)}", hint=_no_network_hint(url, place)) from err
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class _Record:
    url: str
    sha256: str
    size: int


class _Fetcher:
    """Downloads into a scratch folder and remembers what came from where."""

    def __init__(self, source: TaskSource, scratch: Path, place: Path, progress: bool, log):
        self.source, self.scratch, self.place, self.progress, self.log = source, scratch, place, progress, log
        self.records: list[_Record] = []

    def get(self, url: str) -> Path:
        name = PurePosixPath(urlparse(url).path).name or "download"
        path = self.scratch / f"{len(self.records):03d}-{name}"
        sha, size = download(url, path, self.source.sha256.get(url), self.progress, self.place)
        self.records.append(_Record(url, sha, size))
        self.log(f"downloaded {url} ({size:,} bytes, sha256 {sha[:12]}...)")
        return path


# -------------------------------------------------------------------------------------- layouts
def _bad(url: str, problem: str, place: Path) -> DataError:
    return DataError(f"{url}: {problem}", hint=_no_network_hint(url, place))


def _check_squad(raw: bytes, url: str, place: Path) -> dict:
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad(url, f"not a JSON document ({err})", place) from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise _bad(url, "no 'data' list at the top level (not SQuAD 1.1 JSON)", place)
    return document


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _layout_nusax(fetch: _Fetcher, codes: Sequence[str], out: Path) -> list[str]:
    from flare.tasks.nusax import LANGUAGE_FOLDERS

    written = []
    for code in codes:
        folder = LANGUAGE_FOLDERS[code]
        for name in NUSAX_FILES:
            url = fetch.source.urls["csv"].format(folder=folder, file=name)
            raw = fetch.get(url).read_bytes()
            header = raw.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip().lower()
            if [c.strip() for c in header.split(",")] != ["id", "text", "label"]:
                raise _bad(url, f"expected the CSV header id,text,label, found {header[:80]!r}", fetch.place)
            _write(out / folder / name, raw)
            written.append(f"{folder}/{name}")
    _write(out / "LICENSE", fetch.get(fetch.source.urls["license"]).read_bytes())
    return [*written, "LICENSE"]


def _xnli_rows(text: str, url: str, codes: Sequence[str], place: Path) -> dict[str, list[str]]:
    """`xnli.dev.tsv` (header; language, gold_label, sentence1, sentence2 among its columns) ->
    language -> our lines (premise<TAB>hypothesis<TAB>label), in file order."""
    lines = text.split("\n")
    header = lines[0].rstrip("\r").split("\t")
    try:
        at = {name: header.index(name) for name in ("language", "gold_label", "sentence1", "sentence2")}
    except ValueError as err:
        raise _bad(url, f"{XNLI_MEMBER}: {err} in the header {header}", place) from None
    rows: dict[str, list[str]] = {code: [] for code in codes}
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) <= max(at.values()):
            raise _bad(url, f"{XNLI_MEMBER}, row {number}: {len(fields)} fields, expected {len(header)}", place)
        language = fields[at["language"]].strip()
        if language not in rows:
            continue
        label = XNLI_LABELS.get(fields[at["gold_label"]].strip())
        if label is None:
            raise _bad(url, f"{XNLI_MEMBER}, row {number}: unknown label {fields[at['gold_label']]!r}", place)
        premise, hypothesis = fields[at["sentence1"]].strip(), fields[at["sentence2"]].strip()
        rows[language].append(f"{premise}\t{hypothesis}\t{label}")
    english = len(rows["en"])
    for code, kept in rows.items():
        if not kept:
            raise _bad(url, f"{XNLI_MEMBER} holds no rows for language {code!r}", place)
        if len(kept) != english:
            raise _bad(url, f"{XNLI_MEMBER}: {len(kept)} rows for {code!r} but {english} for 'en' "
                            "(the files must be parallel by row)", place)
    return rows


def _layout_xnli(fetch: _Fetcher, codes: Sequence[str], out: Path) -> list[str]:
    url = fetch.source.urls["zip"]
    archive = fetch.get(url)
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.namelist()
                       if PurePosixPath(m).name == XNLI_MEMBER and not m.startswith("__MACOSX")]
            if not members:
                raise _bad(url, f"the archive holds no {XNLI_MEMBER}", fetch.place)
            raw = bundle.read(members[0])
    except zipfile.BadZipFile as err:
        raise _bad(url, f"not a zip archive ({err})", fetch.place) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _bad(url, f"{XNLI_MEMBER} is not UTF-8 ({err})", fetch.place) from None
    written = []
    for code, lines in _xnli_rows(text, url, codes, fetch.place).items():
        _write(out / f"dev-{code}.tsv", ("\n".join(lines) + "\n").encode("utf-8"))
        written.append(f"dev-{code}.tsv")
    return written


def _english_only(document: dict) -> dict:
    """The GoldP train file with only the questions whose id starts with 'english-'."""
    data = []
    for article in document["data"]:
        paragraphs = []
        for paragraph in article.get("paragraphs", []):
            qas = [qa for qa in paragraph.get("qas", []) if str(qa.get("id", "")).split("-", 1)[0] == "english"]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            data.append({**article, "paragraphs": paragraphs})
    return {**document, "data": data}


def _layout_tydiqa(fetch: _Fetcher, codes: Sequence[str], out: Path) -> list[str]:
    train_url, dev_url = fetch.source.urls["train"], fetch.source.urls["dev"]
    dev_archive = fetch.get(dev_url)
    train = _check_squad(fetch.get(train_url).read_bytes(), train_url, fetch.place)
    written = []
    try:
        with tarfile.open(dev_archive, "r:*") as bundle:
            by_name = {PurePosixPath(m.name).name: m for m in bundle.getmembers() if m.isfile()}
            for code in codes:
                wanted = f"tydiqa-goldp-dev-{TYDIQA_NAMES[code]}.json"
                if wanted not in by_name:
                    raise _bad(dev_url, f"the archive holds no {wanted}", fetch.place)
                raw = bundle.extractfile(by_name[wanted]).read()
                _check_squad(raw, f"{dev_url} ({wanted})", fetch.place)
                _write(out / f"tydiqa.goldp.{code}.dev.json", raw)
                written.append(f"tydiqa.goldp.{code}.dev.json")
    except tarfile.TarError as err:
        raise _bad(dev_url, f"not a tar archive ({err})", fetch.place) from None
    english = _english_only(train)
    if not english["data"]:
        raise _bad(train_url, "no question id starts with 'english-' (not the TyDiQA-GoldP train file?)", fetch.place)
    _write(out / "tydiqa.goldp.en.train.json", json.dumps(english, ensure_ascii=False).encode("utf-8"))
    return [*written, "tydiqa.goldp.en.train.json"]


def _layout_xquad(fetch: _Fetcher, codes: Sequence[str], out: Path) -> list[str]:
    written = []
    for code in codes:
        url = fetch.source.urls["json"].format(lang=code)
        raw = fetch.get(url).read_bytes()
        _check_squad(raw, url, fetch.place)
        _write(out / f"xquad.{code}.json", raw)
        written.append(f"xquad.{code}.json")
    return written


_LAYOUTS: dict[str, Callable[[_Fetcher, Sequence[str], Path], list[str]]] = {
    "nusax": _layout_nusax, "xnli": _layout_xnli, "tydiqa": _layout_tydiqa, "xquad": _layout_xquad,
}


def expected_files(task_name: str, codes: Iterable[str]) -> list[str]:
    """The files (relative to the task folder) that a fetch of `codes` writes."""
    codes = list(codes)
    if task_name == "nusax":
        from flare.tasks.nusax import LANGUAGE_FOLDERS

        return [f"{LANGUAGE_FOLDERS[c]}/{name}" for c in codes for name in NUSAX_FILES]
    if task_name == "xnli":
        return [f"dev-{c}.tsv" for c in codes]
    if task_name == "tydiqa":
        return [f"tydiqa.goldp.{c}.dev.json" for c in codes] + ["tydiqa.goldp.en.train.json"]
    if task_name == "xquad":
        return [f"xquad.{c}.json" for c in codes]
    raise ConfigError(f"task {task_name!r} cannot be fetched; fetchable: {', '.join(SOURCES)}")


# ---------------------------------------------------------------------------------------- fetch
def _codes(task, languages: Iterable[str] | str | None) -> list[str]:
    if isinstance(languages, str):
        languages = [languages]
    chosen = [task.resolve_language(x) for x in languages] if languages else list(task.languages)
    ordered = [task.english_language, *chosen]
    return [c for i, c in enumerate(ordered) if c not in ordered[:i]]


def _source_block(source: TaskSource, records: list[_Record], written: list[str]) -> str:
    lines = [
        f"task: {source.task} (flare data fetch)",
        f"date: {datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"homepage: {source.homepage}",
        f"license: {source.license}",
    ]
    for record in records:
        lines += [f"url: {record.url}", f"  sha256: {record.sha256}", f"  bytes: {record.size}"]
    lines.append("files: " + " ".join(written))
    return "\n".join(lines) + "\n"


def fetch_task_data(
    task_name: str,
    destination: str | os.PathLike | None = None,
    languages: Iterable[str] | str | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Download `task_name`'s public data into `destination`/<task> and return `destination`,
    a data root the task loaders accept.

    `destination`: default ``$FLARE_CACHE/data`` (else ``~/.cache/flare/data``).
    `languages`: codes or folder names (default: every language of the task); English is
    always added.  Files that are already there are not fetched again unless `force`.
    """
    from flare.io import atomic_folder, folder_lock
    from flare.tasks.registry import get_task

    key = task_name.strip().lower() if isinstance(task_name, str) else task_name
    if key not in SOURCES:
        raise ConfigError(f"task {task_name!r} cannot be fetched; fetchable tasks: {', '.join(SOURCES)}")
    say = log or (lambda message: None)
    task = get_task(key)
    source = SOURCES[key]
    codes = _codes(task, languages)
    root = Path(destination).expanduser() if destination else download_root()
    target = root / task.folder
    wanted = expected_files(key, codes)
    if not force and all((target / name).is_file() for name in wanted):
        say(f"{key}: already in {target} ({len(wanted)} files); --force fetches them again")
        return root

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the data folder: {err}", root) from None
    with folder_lock(target):
        for stale in [*root.glob(f".{target.name}.partial-*"), *root.glob(f".{target.name}.old-*"),
                      *root.glob(f".{target.name}.download-*")]:
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed fetch; the lock is ours
        with tempfile.TemporaryDirectory(prefix=f".{target.name}.download-", dir=root) as scratch:
            fetcher = _Fetcher(source, Path(scratch), target, progress, say)
            with atomic_folder(target) as stage:
                if target.is_dir():  # keep the languages fetched before
                    shutil.copytree(target, stage, dirs_exist_ok=True)
                written = _LAYOUTS[key](fetcher, codes, stage)
                history = stage / "SOURCE.txt"
                previous = history.read_text(encoding="utf-8") + "\n" if history.is_file() else ""
                history.write_text(previous + _source_block(source, fetcher.records, written), encoding="utf-8")
    say(f"{key}: {len(written)} files in {target}")
    return root


__all__ = ["SOURCES", "TaskSource", "download", "expected_files", "fetch_task_data"]
