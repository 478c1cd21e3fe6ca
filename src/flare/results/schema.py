"""The result file: what one (method, language, seed) run writes, how it is written, and how the
report reads it back. The one definition of the format; the runner writes it, the report and
``flare compare`` read it.

Layout: an experiment directory ``run_dir`` holds one JSON file per run::

    <run_dir>/results/<method>/<language>/seed-<seed>.json

Schema 1 (``RESULT_SCHEMA``; the only one there is)::

    {
      "schema": 1,                         # required, must be 1
      "task": "nusax",                     # task name
      "model": "e5-small",                 # model name
      "method": "flare",                   # required, must equal the <method> folder
      "base_method": "flare",              # the method it trained (variants such as flare-add share it)
      "language": "jav",                   # required, must equal the <language> folder
      "seed": 1,                           # required integer, must equal <seed> in the file name
      "metrics": {                         # required: split -> metric name -> number
        "test":       {"accuracy": 0.78, "macro_f1": 0.76},
        "validation": {"accuracy": 0.80, "macro_f1": 0.79}
      },
      "primary_metric": "macro_f1",        # the metric reported when none is asked for
      "timings": {"train_seconds": 123.4, "eval_seconds": 5.6},   # seconds (other keys allowed)
      "english_side": "human translation", # or "machine translation (<model>)"; may be null
      "config": {...},                     # the run's configuration
      "finished": "2026-11-24T01:02:03Z"   # UTC time the run ended
    }

The runner also writes ``training`` (its ``history`` is the learning curve), ``budget`` (with the
``hyperparameters`` of :data:`HYPERPARAMETERS`), ``selection`` (:func:`selection_summary`),
``reference_scores``, ``warnings``, ``predictions`` (per-example ``ids``/``predicted``/``gold``,
the input of ``flare compare``), ``weights_from`` (a row scoring another run's weights),
``trained_in`` (the tuning trial whose training a final run took over: the same run),
``run_settings`` (everything that makes the run that run: a later ``flare run`` reuses the file
only under the same ones), ``translation`` and ``environment``; :class:`RunResult` keeps what the
tables need, and :mod:`flare.results.training` reads the rest from the file.

Older files: files written before a field existed simply lack it (``base_method``, ``budget``,
``training.history`` ...); the reader takes a missing optional field as "not recorded", never as
an error, so there is nothing to migrate within schema 1. A file of another schema is skipped with
a warning naming it.

Metric units: classification metrics (accuracy, macro_f1) may be stored as 0-1 fractions or, as
:mod:`flare.tasks.metrics` computes them, 0-100; QA metrics (exact_match, f1) as 0-100.

Bad files never stop a report: a file that cannot be read, is not valid JSON (e.g. a run killed
while writing it), is not a JSON object, has a schema other than 1, lacks a required field, or
whose method/language/seed contradicts its path is skipped with a warning naming the file; so is
a file elsewhere under ``results/`` that does not follow the layout. Warnings go to the
``flare.results`` loggers and are returned by :func:`load_results`.

Method order (:func:`method_sort_key`): the order of the method table (:mod:`flare.methods`:
zero-shot, translate-test, lora, input-fusion, xmixup, flare, flare-mt); a variant
``<base>-<suffix>`` (``flare-k0``, ``flare-add``) comes right after its base (longest matching
base, variants alphabetically); unknown methods come last, alphabetically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flare.errors import DataError
from flare.io import write_text_atomic
from flare.methods import method_names

logger = logging.getLogger(__name__)

RESULT_SCHEMA = 1
AVG = "avg"  # the table column (and selection key) of the average over languages
SEED_FILE = re.compile(r"^seed-(-?\d+)\.json$")

#: The training settings a result file records (budget.hyperparameters) and the budget table shows.
HYPERPARAMETERS = ("learning_rate", "epochs", "batch_size", "gradient_accumulation_steps", "max_grad_norm",
                   "warmup_ratio", "weight_decay", "patience", "eval_every", "max_train_examples", "fusion_lr_ratio")


# ============================================================================ writing
def write_json(path: Path, data: dict) -> None:
    """Atomic: a crash leaves the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def hyperparameters(train) -> dict:
    """The training settings a budget table shows, from a train config (any object with them)."""
    return {key: getattr(train, key) for key in HYPERPARAMETERS}


def selection_summary(selection: dict | None, output_dir: str | os.PathLike) -> dict | None:
    """The ``selection`` field: the tuned point, its validation mean and the grid file (relative)."""
    if selection is None:
        return None
    return {"chosen": selection["chosen"], "validation_mean": selection["chosen_mean"],
            "metric": selection["metric"], "languages": selection["languages"], "seeds": selection["seeds"],
            "file": str(Path(selection["path"]).relative_to(output_dir))}


# ============================================================================ method order
def method_sort_key(method: str) -> tuple[int, int, str]:
    """Sort key: the order of the method table, variants right after their base."""
    order = method_names()
    base_index = None
    for i, base in enumerate(order):
        if method == base or method.startswith(base + "-"):
            if base_index is None or len(base) > len(order[base_index]):
                base_index = i
    if base_index is None:
        return (len(order), 1, method)
    return (base_index, 0 if method == order[base_index] else 1, method)


# ============================================================================ reading
@dataclass(frozen=True)
class RunResult:
    """One results file, validated."""

    path: Path
    task: str | None
    model: str | None
    method: str
    language: str
    seed: int
    metrics: dict[str, dict[str, Any]]  # split -> metric -> value (as stored)
    primary_metric: str | None
    timings: dict[str, float]
    english_side: str | None
    finished: str | None
    config: dict[str, Any] = field(default_factory=dict)
    base_method: str | None = None  # the method the run trained (variants share it); None: not stored
    weights_from: str | None = None  # a row scoring another run's weights (flare-no-english): that method

    def value(self, split: str, metric: str) -> float | None:
        """The metric as a float, or None when absent or not a finite number."""
        value = self.metrics.get(split, {}).get(metric)
        return finite(value)


class _BadFile(Exception):
    pass


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _read_object(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise _BadFile(f"cannot be read ({err})") from err
    if not text.strip():
        raise _BadFile("is empty (a run that did not finish writing it?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise _BadFile(
            f"is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}; "
            "partially written?)"
        ) from err
    if not isinstance(data, dict):
        raise _BadFile(f"holds a JSON {type(data).__name__}, not an object")
    if "schema" not in data:
        raise _BadFile(f"has no 'schema' field (expected schema {RESULT_SCHEMA})")
    if data["schema"] != RESULT_SCHEMA or isinstance(data["schema"], bool):
        raise _BadFile(f"has schema {data['schema']!r}; this flare reads schema {RESULT_SCHEMA}")
    return data


def _parse_run(path: Path, method: str, language: str, seed: int) -> RunResult:
    data = _read_object(path)
    for key in ("method", "language"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _BadFile(f"has no '{key}' string")
    if data["method"] != method:
        raise _BadFile(f"says method {data['method']!r} but lies in the folder of {method!r}")
    if data["language"] != language:
        raise _BadFile(f"says language {data['language']!r} but lies in the folder of {language!r}")
    file_seed = data.get("seed")
    if isinstance(file_seed, bool) or not isinstance(file_seed, int):
        raise _BadFile(f"has no integer 'seed' (found {file_seed!r})")
    if file_seed != seed:
        raise _BadFile(f"says seed {file_seed} but is named for seed {seed}")

    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise _BadFile("has no 'metrics' object of the form {split: {metric: value}}")

    timings_raw = data.get("timings")
    timings: dict[str, float] = {}
    if isinstance(timings_raw, dict):
        for key, value in timings_raw.items():
            number = finite(value)
            if number is not None:
                timings[str(key)] = number

    def optional_str(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    config = data.get("config")
    return RunResult(
        path=path,
        task=optional_str("task"),
        model=optional_str("model"),
        method=method,
        language=language,
        seed=seed,
        metrics={str(k): dict(v) for k, v in metrics.items()},
        primary_metric=optional_str("primary_metric"),
        timings=timings,
        english_side=optional_str("english_side"),
        finished=optional_str("finished"),
        config=config if isinstance(config, dict) else {},
        base_method=optional_str("base_method"),
        weights_from=optional_str("weights_from"),
    )


def load_results(run_dir: str | os.PathLike) -> tuple[list[RunResult], list[str]]:
    """Every valid results file under ``run_dir/results`` and the warnings about the others.

    Raises :class:`DataError` only when ``run_dir/results`` does not exist.
    """
    results_dir = Path(run_dir) / "results"
    if not results_dir.is_dir():
        raise DataError(
            "no results folder",
            path=results_dir,
            hint="pass the experiment directory whose runs wrote results/<method>/<language>/seed-<seed>.json",
        )
    runs: list[RunResult] = []
    warnings: list[str] = []

    def warn(message: str) -> None:
        logger.warning("%s", message)
        warnings.append(message)

    for path in sorted(results_dir.rglob("*.json")):
        parts = path.relative_to(results_dir).parts
        match = SEED_FILE.match(path.name)
        if len(parts) != 3 or match is None:
            warn(f"{path}: skipped, not a results/<method>/<language>/seed-<seed>.json file")
            continue
        try:
            runs.append(_parse_run(path, parts[0], parts[1], int(match.group(1))))
        except _BadFile as err:
            warn(f"{path}: skipped, {err}")
    return runs, warnings
