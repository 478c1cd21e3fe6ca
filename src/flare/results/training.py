"""The training side of a report: the budget table, the hyperparameter grids tuned on validation,
the majority-class / chance scores, the "learned nothing" warnings, and the learning curves as data.

All of it is read from fields that result files written since issue 18 carry (`budget`,
`training.history`, `selection`, `reference_scores`, `warnings`) and from
`tuning/<method>/selection.json`; older files lack them and are shown as "not recorded", never
an error. The report writes ``budget.csv`` and the sections of results.md from here; the curve
figures (``curves-<method>.png``) are drawn by :mod:`flare.results.plot`.
"""

from __future__ import annotations

import json
import math
import statistics
from functools import lru_cache
from pathlib import Path
from typing import Any

from flare.results.schema import HYPERPARAMETERS, method_sort_key

#: The advice every "learned nothing" warning ends with (the runner's sanity checks write it too).
CAUSES = ("likely causes: a learning rate too low or too high, too few epochs or steps, too little "
          "training data; tune on validation (docs/pipeline.md, \"How to tune\")")

BUDGET_CSV = "budget.csv"
BUDGET_COLUMNS = ("method", "runs", "optimizer_steps", "examples_seen", "trainable_parameters", "train_seconds",
                  "eval_seconds", "stopped_early", "hyperparameters", "selected_by")


@lru_cache(maxsize=4096)
def _read(path: str, mtime: float) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_fields(run) -> dict:
    """The full JSON of a report's run (the report keeps only what its tables need)."""
    path = Path(run.path)
    try:
        return _read(str(path), path.stat().st_mtime)
    except OSError:
        return {}


# ----------------------------------------------------------------------------- budget
def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


#: How the budget table names a setting, and the value it leaves out (the default; None: always shown).
_SHOWN = {"learning_rate": ("lr", None), "epochs": ("epochs ≤", None), "batch_size": ("batch", None),
          "gradient_accumulation_steps": ("accumulation", 1), "max_grad_norm": ("clip", "null"),
          "warmup_ratio": ("warmup", 0.1), "weight_decay": ("wd", 0.0), "patience": ("patience", "null"),
          "eval_every": ("eval every", "epoch"), "max_train_examples": ("train examples", "null"),
          "fusion_lr_ratio": ("fusion lr ×", 1.0)}


def _hyperparameters_text(settings: list[dict]) -> str:
    """`lr 0.001, epochs ≤ 5, batch 16, patience 2`: the settings, defaults left out; values that
    differ between the runs joined with /."""
    if not settings:
        return "not recorded"
    parts = []
    for key, (label, default) in _SHOWN.items():
        values = list(dict.fromkeys(json.dumps(s.get(key)).strip('"') for s in settings if key in s))
        if not values or (len(values) == 1 and default is not None and values[0] == json.dumps(default).strip('"')):
            continue
        value = "/".join(v[:-2] if v.endswith(".0") and key == "epochs" else v for v in values)
        parts.append(f"{label} {value}")
    return ", ".join(parts)


def _config_settings(data: dict) -> dict | None:
    train = (data.get("config") or {}).get("train")
    return {key: train[key] for key in HYPERPARAMETERS if key in train} if isinstance(train, dict) else None


def stopped_early(training: dict) -> bool:
    """Whether early stopping ended a run before its step budget. Files written before 2026-12-07
    also flag a run whose patience ran out at its last evaluation, after every step: not counted."""
    steps, budget = training.get("steps"), training.get("max_steps")
    return bool(training.get("stopped_early")) and not (budget and steps is not None and steps >= budget)


def budget_rows(report) -> list[dict[str, Any]]:
    """Per method: runs, mean optimizer steps, examples seen, trainable parameters, training and
    evaluation seconds, early stops, the training settings and how they were chosen."""
    by_method: dict[str, list[dict]] = {}
    for run in report.runs:
        by_method.setdefault(run.method, []).append(run_fields(run))
    rows = []
    for method in sorted(by_method, key=method_sort_key):
        data = by_method[method]
        budgets = [d["budget"] for d in data if isinstance(d.get("budget"), dict)]
        training = [d["training"] for d in data
                    if isinstance(d.get("training"), dict) and "stopped_early" in d["training"]]
        settings = [b["hyperparameters"] for b in budgets if isinstance(b.get("hyperparameters"), dict)]
        if not settings:  # older files: the run's config holds the settings (not a method's own or tuned ones)
            settings = [_config_settings(d) for d in data if d.get("training") and _config_settings(d)]
        selections = [d["selection"] for d in data if isinstance(d.get("selection"), dict)]
        trained = any(d.get("training") for d in data)

        def mean_of(key: str, source=budgets) -> float | None:
            return _mean([float(b[key]) for b in source if isinstance(b.get(key), (int, float))])

        if selections:
            selected_by = f"tuned on validation ({selections[0].get('file', 'tuning/')})"
        elif any(d.get("weights_from") for d in data):
            selected_by = f"{data[0]['weights_from']}'s weights"
        else:
            selected_by = "config" if trained else "untrained"
        timings = [d.get("timings") or {} for d in data]
        rows.append({
            "method": method, "runs": len(data),
            "optimizer_steps": mean_of("optimizer_steps"), "examples_seen": mean_of("examples_seen"),
            "trainable_parameters": mean_of("trainable_parameters"),
            "train_seconds": mean_of("train_seconds", budgets) if budgets else mean_of("train_seconds", timings),
            "eval_seconds": mean_of("eval_seconds", budgets) if budgets else mean_of("eval_seconds", timings),
            "stopped_early": sum(stopped_early(t) for t in training) if training else None,
            "hyperparameters": _hyperparameters_text(settings) if trained else "-",
            "selected_by": selected_by,
        })
    return rows


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def budget_markdown(report, compact: bool = False) -> str:
    """The budget table: what each method was given to reach its score (means over its runs).
    `compact` (a terminal of 80 columns): the numbers in the table, each method's settings below it."""
    if compact:
        rows = budget_rows(report)
        lines = ["| method | steps | examples | params | train s | eval s | early |",
                 "|:---|---:|---:|---:|---:|---:|---:|"]
        for row in rows:
            stops = "–" if row["stopped_early"] is None else f"{row['stopped_early']}/{row['runs']}"
            lines.append(f"| {row['method']} | {_fmt(row['optimizer_steps'])} | {_fmt(row['examples_seen'])} | "
                         f"{_fmt(row['trainable_parameters'])} | {_fmt(row['train_seconds'], 1)} | "
                         f"{_fmt(row['eval_seconds'], 1)} | {stops} |")
        lines.append("")
        lines += [f"- {row['method']}: {row['hyperparameters']} ({row['selected_by']})" for row in rows
                  if row["hyperparameters"] not in (None, "", "-")]
        return "\n".join(lines) + "\n"
    lines = ["| method | runs | optimizer steps | examples seen | trainable params | train s | eval s | "
             "early stops | settings | chosen by |", "|:---|---:|---:|---:|---:|---:|---:|---:|:---|:---|"]
    for row in budget_rows(report):
        stops = "–" if row["stopped_early"] is None else f"{row['stopped_early']}/{row['runs']}"
        lines.append(f"| {row['method']} | {row['runs']} | {_fmt(row['optimizer_steps'])} | "
                     f"{_fmt(row['examples_seen'])} | {_fmt(row['trainable_parameters'])} | "
                     f"{_fmt(row['train_seconds'], 1)} | {_fmt(row['eval_seconds'], 1)} | {stops} | "
                     f"{row['hyperparameters']} | {row['selected_by']} |")
    return "\n".join(lines) + "\n\n- Means over each method's runs; `–`: not recorded (older result files).\n"


# ----------------------------------------------------------------------------- tuning
def tuning_markdown(run_dir: Path) -> str:
    """Every tuned method's grid: each point's mean validation score, the chosen one in bold."""
    files = sorted((Path(run_dir) / "tuning").glob(f"*/{'selection.json'}"))
    parts = []
    for path in files:
        selection = _read(str(path), path.stat().st_mtime)
        if not selection.get("points"):
            continue
        parts.append(f"**{selection['method']}** ({selection['metric']} on {selection.get('split', 'validation')}, "
                     f"mean over {', '.join(selection['languages'])} x seeds "
                     f"{', '.join(map(str, selection['seeds']))}):")
        parts.append("")
        parts.append("| setting | validation mean | optimizer steps | early stops |")
        parts.append("|:---|---:|---:|---:|")
        for point in selection["points"]:
            text = ", ".join(f"{k} {v}" for k, v in point["point"].items())
            mean = f"{point['mean']:.2f}"
            if point["key"] == selection["chosen_key"]:
                text, mean = f"**{text}** (chosen)", f"**{mean}**"
            parts.append(f"| {text} | {mean} | {_fmt(point.get('optimizer_steps'))} | "
                         f"{point.get('stopped_early', '–')} |")
        parts.append("")
        edges = grid_edge_notes(selection)
        if edges:
            parts += [f"- {note}" for note in edges] + [""]
    return "\n".join(parts)


def grid_edge_notes(selection: dict) -> list[str]:
    """A note per numeric grid axis (3 values or more) whose chosen value is the smallest or largest
    one tried: the best setting may lie beyond the grid, so the method may be under-tuned."""
    notes = []
    for axis, values in (selection.get("grid") or {}).items():
        chosen = (selection.get("chosen") or {}).get(axis)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if len(values) < 3 or not numeric or chosen not in (min(values), max(values)):
            continue
        word = "smallest" if chosen == min(values) else "largest"
        notes.append(f"{selection['method']}: the chosen {axis} {chosen:g} is the {word} value of its grid "
                     f"({', '.join(f'{v:g}' for v in values)}); a better one may lie beyond it")
    return notes


# ----------------------------------------------------------------------------- majority / chance
def reference_rows(report) -> dict[str, dict[str, float]]:
    """{"majority class" | "chance": {language: mean score}} for the report's split and metric."""
    found: dict[str, dict[str, list[float]]] = {"majority class": {}, "chance": {}}
    for run in report.runs:
        refs = run_fields(run).get("reference_scores")
        if not isinstance(refs, dict):
            continue
        for label, key in (("majority class", "majority_class"), ("chance", "chance")):
            value = (refs.get(key) or {}).get(report.split, {}).get(report.metric)
            if isinstance(value, (int, float)):
                found[label].setdefault(run.language, []).append(float(value))
    return {label: {lang: statistics.fmean(v) for lang, v in by_lang.items()} for label, by_lang in found.items()
            if by_lang}


def reference_markdown(report) -> str:
    rows = reference_rows(report)
    if not rows:
        return ""
    lines = [f"Reference scores ({report.metric}, {report.split}): always predicting the training majority class, "
             "and the expected score of uniform random guessing.", "",
             "| reference | " + " | ".join(report.languages) + " |",
             "|:---|" + "---:|" * len(report.languages)]
    for label, by_lang in rows.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(by_lang.get(lang), 1) for lang in report.languages) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- warnings
def learning_warnings(report) -> list[str]:
    """The runs' (and stage 1's) warnings that a model learned nothing."""
    warnings = []
    for path in sorted(Path(report.run_dir).glob("stage1/**/stage1.json")):
        warnings += [w for w in _read(str(path), path.stat().st_mtime).get("warnings", []) if isinstance(w, str)]
    for run in report.runs:
        data = run_fields(run)
        if "warnings" in data:
            warnings += [w for w in data["warnings"] or [] if isinstance(w, str)]
            continue
        predicted = (data.get("predictions") or {}).get("predicted")  # an older file: its stored predictions
        if isinstance(predicted, list) and len(predicted) > 1 and len({repr(p) for p in predicted}) == 1:
            warnings.append(f"{run.method} {run.language} seed {run.seed}: every test prediction is the same "
                            f"({predicted[0]!r}): the model learned nothing usable; {CAUSES}")
    return list(dict.fromkeys(warnings))


# The phrases pipeline writes into a stage-1 record's warnings when a retrain made another model than the
# record (it builds its messages from these), so that the report can tell them from failed training.
NOT_THE_RECORDED_MODEL = "is not the recorded model"
RETRAINED_INTO_ANOTHER = "was retrained into a different model"
RETRAINED = (NOT_THE_RECORDED_MODEL, RETRAINED_INTO_ANOTHER)


def warnings_markdown(report) -> str:
    """The learning warnings, loud, above the table; a stage-1 model retrained into another than its
    record (a fresh checkout on another CPU) is said apart: it is provenance, not a failed training."""
    warnings = learning_warnings(report)
    retrained = [w for w in warnings if any(mark in w for mark in RETRAINED)]
    failed = [w for w in warnings if w not in retrained]
    text = ""
    if failed:
        text += ("## WARNING: models that learned nothing\n\n" + "".join(f"- **{w}**\n" for w in failed)
                 + "\nNumbers of these runs say nothing about the methods; fix the training first.\n")
    if retrained:
        text += ("\n## Stage-1 models retrained into others than their records\n\n"
                 + "".join(f"- {w}\n" for w in retrained)
                 + "\nEvery run in the tables was built on the current records (docs/pipeline.md, "
                   "\"A stage-1 record without its weights\").\n")
    return text


def training_sections(report) -> str:
    """The sections results.md gets after the main table."""
    parts = []
    reference = reference_markdown(report)
    if reference:
        parts.append(reference)
    parts.append("## Budget\n\n" + budget_markdown(report))
    selection = tuning_markdown(report.run_dir)
    if selection:
        parts.append("## Hyperparameters chosen on validation\n\n" + selection)
    curves = sorted({run.method for run in report.runs if learning_curve(run)})
    if curves:
        parts.append("## Learning curves\n\n" + "".join(f"![{m}]({curve_file(m)})\n" for m in curves))
    return "\n".join(parts)


# ----------------------------------------------------------------------------- curves
def curve_file(method: str) -> str:
    return "curves-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in method) + ".png"


def learning_curve(run) -> list[dict]:
    """The run's learning curve; none for a row scored from another run's weights (flare-no-english)."""
    if run_fields(run).get("weights_from"):
        return []
    training = run_fields(run).get("training")
    history = training.get("history") if isinstance(training, dict) else None
    return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
