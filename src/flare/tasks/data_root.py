"""Find the folder that holds the task data, and say which one was used."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flare.errors import DataError

ENV_VAR = "FLARE_DATA"
_PROJECT_ROOT = Path(__file__).resolve().parents[3]


def __getattr__(name: str):
    """`FETCHABLE` (older name): the tasks `flare data fetch` can download, from the registry."""
    if name == "FETCHABLE":
        from flare.tasks.registry import fetchable_tasks

        return fetchable_tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class DataRoot:
    path: Path
    found_by: str  # "--data-dir", "$FLARE_DATA", "../shared/data next to ...", or the download folder

    def __str__(self) -> str:
        return f"{self.path} (from {self.found_by})"


def download_root() -> Path:
    """Where `flare data fetch` puts task data: `$FLARE_CACHE/data`, else `~/.cache/flare/data`."""
    from flare.io import cache_root

    return cache_root() / "data"


def candidate_roots(explicit: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """Places to look, in order of precedence."""
    places: list[tuple[Path, str]] = []
    if explicit:
        places.append((Path(explicit).expanduser(), "--data-dir"))
    if os.environ.get(ENV_VAR):
        places.append((Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"))
    places.append((Path.cwd().parent / "shared" / "data", "../shared/data from the working directory"))
    places.append((_PROJECT_ROOT.parent / "shared" / "data", "../shared/data from the project root"))
    places.append((download_root(), "the download folder of `flare data fetch`"))
    return places


def _fetch_hint(needs: str | None) -> str:
    from flare.tasks.registry import fetchable_tasks  # the registry imports this module

    fetchable = fetchable_tasks()  # the task folders it can download (folder name = task name)
    if needs in fetchable:
        command = f"`flare data fetch {needs}`"
    else:
        command = f"`flare data fetch TASK` (TASK: {', '.join(fetchable)})"
    return (
        f"where a network allows, download it with {command} (into {download_root()}); "
        f"else pass --data-dir DIR or set {ENV_VAR}=DIR to a folder laid out as described in docs/data.md"
    )


def find_data_root(explicit: str | os.PathLike | None = None, needs: str | None = None) -> DataRoot:
    """Return the first existing data root (holding `needs`, a sub-folder, when given).

    An explicit directory that does not exist is an error rather than silently skipped.
    When nothing is found, the DataError lists every place looked at and how to get the data.
    """
    looked: list[str] = []
    for path, how in candidate_roots(explicit):
        if how == "--data-dir" and not path.is_dir():
            raise DataError(f"the data directory given with --data-dir does not exist: {path}")
        target = path / needs if needs else path
        if target.is_dir():
            return DataRoot(path.resolve(), how)
        looked.append(f"{target} ({how})")
    what = f"no task data for {needs!r} found" if needs else "no task data found"
    raise DataError(what + "; looked in: " + "; ".join(looked), hint=_fetch_hint(needs))
