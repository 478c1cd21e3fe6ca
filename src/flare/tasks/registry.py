"""The task registry, which the CLI, ``flare data fetch`` and the pipeline read, and ``describe``
(counts per language and split, for ``flare data``).

``TASKS`` maps each task name to its class; :func:`get_task` builds one with the class's
``from_options``.  Everything else about a task (its options, decoder prompt, primary metric,
public source and fetch layout) is on its class, in its module.  The built-in tasks (nusax,
xnli, tydiqa, xquad) take no options but ``allow_unanswered`` (the QA tasks); "parallel" (user
data) needs a :class:`~flare.tasks.parallel.ParallelConfig`, a list of them (several target
languages) or a mapping of its options (``language`` or ``languages``, see
:func:`~flare.tasks.parallel.parallel_configs`).  :func:`register_task` adds a task defined
outside flare.

``SOURCES`` (task name -> :class:`~flare.tasks.fetch.TaskSource`) holds the tasks that
``flare data fetch`` can download; :func:`fetchable_tasks` lists their names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flare.errors import ConfigError
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.fetch import TaskSource
from flare.tasks.nusax import NusaXTask
from flare.tasks.parallel import ParallelConfig, ParallelTask
from flare.tasks.tydiqa import TyDiQATask
from flare.tasks.xnli import XNLITask
from flare.tasks.xquad import XQuADTask

TASKS: dict[str, type[BaseTask]] = {}
#: task name -> where `flare data fetch` downloads it from (the tasks with a ``source``)
SOURCES: dict[str, TaskSource] = {}


def register_task(cls: type[BaseTask], *, replace: bool = False) -> type[BaseTask]:
    """Add the task class `cls` under ``cls.name`` (usable as a class decorator)."""
    name = cls.name
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise ConfigError(f"a task needs a lower-case name, got {name!r}")
    if name in TASKS and not replace:
        raise ConfigError(f"task {name!r} is already registered (pass replace=True to replace it)")
    TASKS[name] = cls
    SOURCES.pop(name, None)
    if cls.source is not None:
        SOURCES[name] = cls.source
    return cls


for _cls in (NusaXTask, XNLITask, TyDiQATask, XQuADTask, ParallelTask):
    register_task(_cls)


def fetchable_tasks() -> tuple[str, ...]:
    """The names of the tasks that `flare data fetch` can download."""
    return tuple(SOURCES)


def get_task(
    name: str, config: ParallelConfig | Sequence[ParallelConfig] | Mapping[str, Any] | None = None
) -> BaseTask:
    """The task called ``name``.

    ``config``: for "parallel" its ParallelConfig (or one per language) or options (required); for "xquad" and
    "tydiqa" optionally ``{"allow_unanswered": True}``; the other tasks take none.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in TASKS:
        raise ConfigError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[key].from_options(config)


def describe(
    task: BaseTask | str,
    data_root: str | os.PathLike | DataRoot | None = None,
    languages: Iterable[str] | None = None,
) -> dict[str, dict[str, int]]:
    """Number of examples per language and split: ``{language: {split: count}}``.

    Only the splits that exist for a language are listed (TyDiQA target languages: test).
    Loads every split, so every data problem surfaces here as the loaders report it.
    """
    if isinstance(task, str):
        task = get_task(task)
    if data_root is None and task.folder:
        data_root = task.root(None)
    counts: dict[str, dict[str, int]] = {}
    for language in languages if languages is not None else task.languages:
        code = task.resolve_language(language)
        counts[code] = {split: len(task.load(code, split, data_root)) for split in task.splits(code)}
    return counts
