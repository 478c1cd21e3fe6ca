"""Fetch task data from its public home: the generic engine behind ``flare data fetch``.

``fetch_task_data(task, destination=None, languages=None)`` takes the task's
:class:`TaskSource` (its ``source``: URLs, homepage, license; collected in
:data:`flare.tasks.registry.SOURCES`), lets the task lay the downloads out as its loader
expects (the task's ``fetch_layout``; each task module documents its layout) and writes
``<destination>/<task>/...``.

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
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from flare.errors import ConfigError, DataError
from flare.io import atomic_folder, folder_lock
from flare.tasks.data_root import download_root

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
    import urllib.error

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
    import http.client  # here, not at the top: `flare --help` reads the registry, which imports this module
    import urllib.error
    import urllib.request

    dest = Path(dest)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    except ValueError as err:
        raise DataError(f"cannot download {url}: {err}",
                        hint="check the URL in the task's source (flare.tasks.registry.SOURCES)") from None
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
                     "check the file and update the digest in the task's source (flare.tasks.registry.SOURCES)",
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


class Fetcher:
    """Downloads into a scratch folder and remembers what came from where; what a task's
    ``fetch_layout`` receives (``source``: the task's URLs; ``place``: the task folder, named in
    error hints)."""

    def __init__(self, source: TaskSource, scratch: Path, place: Path, progress: bool, log):
        self.source, self.scratch, self.place, self.progress, self.log = source, scratch, place, progress, log
        self.records: list[_Record] = []

    def get(self, url: str) -> Path:
        """Download `url` into the scratch folder; the local path."""
        name = PurePosixPath(urlparse(url).path).name or "download"
        path = self.scratch / f"{len(self.records):03d}-{name}"
        sha, size = download(url, path, self.source.sha256.get(url), self.progress, self.place)
        self.records.append(_Record(url, sha, size))
        self.log(f"downloaded {url} ({size:,} bytes, sha256 {sha[:12]}...)")
        return path

    def bad(self, url: str, problem: str) -> DataError:
        """The error for a download that is not what the layout expects."""
        return DataError(f"{url}: {problem}", hint=_no_network_hint(url, self.place))

    def check_squad(self, raw: bytes, url: str) -> dict:
        """`raw` parsed as SQuAD 1.1 JSON (a top-level ``data`` list), else a DataError."""
        try:
            document = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise self.bad(url, f"not a JSON document ({err})") from None
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            raise self.bad(url, "no 'data' list at the top level (not SQuAD 1.1 JSON)")
        return document


def write_file(path: Path, data: bytes) -> None:
    """Write a laid-out file into the staging folder (made atomic by the folder's rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---------------------------------------------------------------------------------------- fetch
def _fetchable_task(task_name: str):
    from flare.tasks.registry import SOURCES, get_task

    key = task_name.strip().lower() if isinstance(task_name, str) else task_name
    if key not in SOURCES:
        raise ConfigError(f"task {task_name!r} cannot be fetched; fetchable tasks: {', '.join(SOURCES)}")
    return get_task(key), SOURCES[key]


def expected_files(task_name: str, codes: Iterable[str]) -> list[str]:
    """The files (relative to the task folder) that a fetch of `codes` writes."""
    task, _ = _fetchable_task(task_name)
    return task.fetch_files(list(codes))


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
    task, source = _fetchable_task(task_name)
    key = task.name
    say = log or (lambda message: None)
    codes = _codes(task, languages)
    root = Path(destination).expanduser() if destination else download_root()
    target = root / task.folder
    wanted = task.fetch_files(codes)
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
            fetcher = Fetcher(source, Path(scratch), target, progress, say)
            with atomic_folder(target) as stage:
                if target.is_dir():  # keep the languages fetched before
                    shutil.copytree(target, stage, dirs_exist_ok=True)
                written = task.fetch_layout(fetcher, codes, stage)
                history = stage / "SOURCE.txt"
                previous = history.read_text(encoding="utf-8") + "\n" if history.is_file() else ""
                history.write_text(previous + _source_block(source, fetcher.records, written), encoding="utf-8")
    say(f"{key}: {len(written)} files in {target}")
    return root


__all__ = ["Fetcher", "TaskSource", "download", "expected_files", "fetch_task_data", "write_file"]
