"""The task registry and ``describe`` (counts per language and split, for ``flare data``).

``TASKS`` maps each task name to its class; :func:`get_task` builds one.  The built-in tasks
(nusax, xnli, tydiqa, xquad) take no options; "parallel" (user data) needs a
:class:`~flare.tasks.parallel.ParallelConfig`, a list of them (several target languages) or a
mapping of its options (``language`` or ``languages``, see :func:`~flare.tasks.parallel.parallel_configs`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flare.errors import ConfigError
from flare.tasks.base import BaseTask
from flare.tasks.data_root import DataRoot
from flare.tasks.nusax import NusaXTask
from flare.tasks.parallel import ParallelConfig, ParallelTask
from flare.tasks.tydiqa import TyDiQATask
from flare.tasks.xnli import XNLITask
from flare.tasks.xquad import XQuADTask

TASKS: dict[str, type[BaseTask]] = {
    "nusax": NusaXTask,
    "xnli": XNLITask,
    "tydiqa": TyDiQATask,
    "xquad": XQuADTask,
    "parallel": ParallelTask,
}


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
    if key == "parallel":
        if config is None:
            raise ConfigError(
                "the parallel task (user data) needs a configuration: language, the files "
                "(train/validation/test or data) and the column names"
            )
        return ParallelTask(config)
    options = dict(config or {})
    accepted = {"xquad": {"allow_unanswered"}, "tydiqa": {"allow_unanswered"}}.get(key, set())
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"task {key} has no option {unknown[0]!r}; "
            + (f"valid options: {', '.join(sorted(accepted))}" if accepted else "it takes no options")
        )
    return TASKS[key](**options)


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
