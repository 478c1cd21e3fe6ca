"""Per-method hyperparameter selection on validation (`flare tune`, and `flare run` before its runs).

For every trained method with a grid (`search.grid`, the method's own `search:` keys replacing
the global ones), every grid point is trained on each of `search.languages` x `search.seeds`
(default: every language, the first seed) and scored on the **validation** split only; the point
with the best mean validation score (the task's primary metric; ties: the first in grid order)
is the method's setting for its final runs. Layout, under the experiment's output_dir:

    tuning/<method>/<point>/<language>/seed-<seed>.json   one trial (skipped when it exists)
    tuning/<method>/selection.json                        the grid, every point's scores, the choice

The test split is never read here (`Experiment.run_trial`).

A trial on a language and seed that also has a final run keeps its last checkpoint (under
checkpoints/tuning/..., with the run's settings in `run.json`) until the choice is made; the final
run of the chosen point on that language and seed is then the same run, so it takes that
checkpoint over instead of training again (`adopt_trial`; its result names the trial in
`trained_in`). The other points' checkpoints are removed once the choice is made.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flare.environment import finished_at
from flare.errors import FlareError
from flare.pipeline.checkpoint import LATEST, remove_checkpoints, settings_diff
from flare.pipeline.config import MethodConfig, TrainConfig, grid_points
from flare.results.training import grid_edge_notes, stopped_early

SELECTION = "selection.json"
RUN_SETTINGS = "run.json"  # beside a kept trial checkpoint: what a final must match to take it over
# config keys that choose which runs happen, or how they are logged, not what one run computes
NOT_RUN_SETTINGS = ("languages", "methods", "seeds", "output_dir", "data_dir", "search", "stage1", "stage1_seeds",
                    "stage1_mismatch", "train", "adapter", "no_english_rows", "threads", "tensorboard", "log_with",
                    "resume")
# train settings that say where the source-state cache lives and how large it may grow, and how often
# a checkpoint is written, not what a run computes (the cache's dtype does, and stays): a run with
# them otherwise is still the same run
NOT_RUN_TRAIN_SETTINGS = ("source_cache_dir", "source_cache_limit_mb", "checkpoint_steps")


def point_key(point: dict[str, Any]) -> str:
    """A readable folder name for a grid point: `learning_rate=0.0003,epochs=10.0`."""
    text = ",".join(f"{key}={value}" for key, value in point.items())
    return "".join(c if c.isalnum() or c in "=,.-_+" else "_" for c in text)


def trial_name(method: str, key: str, language: str | None = None, seed: int | None = None) -> str:
    """A trial's path under the output folder (its record: + ".json"; its checkpoints under checkpoints/);
    without language and seed, the folder of a grid point's trials."""
    return f"tuning/{method}/{key}" + (f"/{language}/seed-{seed}" if language is not None else "")


def tuning_dir(experiment, method: MethodConfig) -> Path:
    return experiment.output_dir / "tuning" / method.name


def plan(experiment, method: MethodConfig) -> dict | None:
    """What tuning `method` means under the current config (None: not tuned)."""
    search = experiment.config.search
    grid = search.method_grid(method)
    if not grid:
        return None
    return {"grid": grid, "points": grid_points(grid),
            "languages": list(search.languages or experiment.config.languages),
            "seeds": list(search.seeds or experiment.config.seeds[:1]), "metric": experiment.primary_metric}


def planned_trials(method: MethodConfig, wanted: dict):
    """(point, key, language, seed, run name) of every trial of a plan, in the order they run."""
    for point in wanted["points"]:
        key = point_key(point)
        for language in wanted["languages"]:
            for seed in wanted["seeds"]:
                yield point, key, language, seed, trial_name(method.name, key, language, seed)


class TrialsHeldElsewhere(Exception):
    """Raised (with `wait=False`) when every trial this process could train is done and the rest are
    being trained by another process: the selection must wait for them."""


def selection_for(experiment, method: MethodConfig, wait: bool = True) -> dict | None:
    """The selection of `method` (tuning it first when its selection is missing or was made for
    another grid, languages or seeds); None when the method is not tuned. With `wait=False`, trials
    another process is training are not waited for: `TrialsHeldElsewhere` instead."""
    wanted = plan(experiment, method)
    if wanted is None:
        return None
    path = tuning_dir(experiment, method) / SELECTION
    if path.is_file():
        selection = json.loads(path.read_text())
        if all(_same(selection.get(key), wanted[key]) for key in ("grid", "languages", "seeds", "metric")):
            for point, _, language, seed, run_name in planned_trials(method, wanted):  # made under these settings
                trial = experiment.output_dir / f"{run_name}.json"
                if trial.is_file():
                    check_same_settings(trial, json.loads(trial.read_text()),
                                        point_settings(experiment, method, point, language, seed))
            return {**selection, "path": str(path)}
        experiment.log(f"tuning {method.name}: {path} was made for another grid; choosing again")
    return tune_method(experiment, method, wait)


def tune(experiment, methods: list[MethodConfig] | None = None) -> dict[str, dict]:
    """Tune every method (of `methods`, default all) that has a grid; {method name: selection}."""
    selections = {}
    for method in experiment.config.methods if methods is None else methods:
        selection = selection_for(experiment, method)
        if selection is not None:
            selections[method.name] = selection
    return selections


def tune_free(experiment, methods: list[MethodConfig]) -> list[MethodConfig]:
    """Tune each of `methods` as far as this process can without waiting; the methods whose last
    trials another process is training are returned, so that the caller does other runs first."""
    held = []
    for method in methods:
        try:
            selection_for(experiment, method, wait=False)
        except TrialsHeldElsewhere:
            held.append(method)
    return held


def tune_method(experiment, method: MethodConfig, wait: bool = True) -> dict:
    """Every trial of `method`'s grid (finished ones read back), then the choice, written to
    tuning/<method>/selection.json. A trial another process is training is come back to after the
    others and then waited for (`wait=False`: `TrialsHeldElsewhere` instead of waiting)."""
    from flare.results.schema import write_json

    wanted = plan(experiment, method)
    folder = tuning_dir(experiment, method)
    planned = list(planned_trials(method, wanted))
    trials, pending = {}, planned
    for waiting in (False, True):  # trials another process is training: after the others, waited for
        if waiting and pending and not wait:
            experiment.log(f"tuning {method.name}: {len(pending)} trial(s) in another process; other runs first")
            raise TrialsHeldElsewhere(method.name)
        later = []
        for point, key, language, seed, run_name in pending:
            with experiment.run_lock(run_name, wait=waiting) as ours:
                if ours:
                    trials[run_name] = _trial(experiment, method, wanted, point, key, language, seed, run_name)
                else:
                    experiment.log(f"tuning {method.name}: {key} {language} seed {seed}: another process is "
                                   "training it; back to it after the others")
                    later.append((point, key, language, seed, run_name))
        pending = later
    trials = [trials[planned_run[-1]] for planned_run in planned]
    selection = choose(method.name, wanted, trials)
    path = folder / SELECTION
    if experiment.accelerator.is_main_process:
        write_json(path, selection)
        for point in wanted["points"]:  # only the chosen point's trials can be final runs
            if point_key(point) != selection["chosen_key"]:
                remove_checkpoints(experiment.checkpoint_dir(trial_name(method.name, point_key(point))))
    experiment.accelerator.wait_for_everyone()
    experiment.log(f"tuning {method.name}: chose {selection['chosen_key']} (validation {wanted['metric']} "
                   f"{selection['chosen_mean']:.2f}, mean over {len(wanted['languages'])} language(s) x "
                   f"{len(wanted['seeds'])} seed(s)); grid in {path}")
    for note in grid_edge_notes(selection):
        experiment.log(f"tuning {note}")
    return {**selection, "path": str(path)}


def _trial(experiment, method: MethodConfig, wanted: dict, point: dict, key: str, language: str, seed: int,
           run_name: str) -> dict:
    """One trial's record: read back when it exists, else trained and written."""
    from flare.results.schema import write_json

    train_cfg = method.train_config(experiment.config.train, point)
    path = experiment.output_dir / f"{run_name}.json"
    if path.is_file():
        experiment.log(f"tuning {method.name}: skip {key} {language} seed {seed}: {path} exists")
        trial = json.loads(path.read_text())
        check_same_settings(path, trial, point_settings(experiment, method, point, language, seed))
        return trial
    trial = {"method": method.name, "point": point, "key": key, "language": language, "seed": seed,
             **experiment.run_trial(method.at(point), language, seed, train_cfg, run_name),
             "finished": finished_at()}
    if experiment.accelerator.is_main_process:
        write_json(path, trial)
        _keep_or_remove(experiment, method.at(point), language, seed, train_cfg, run_name)
    experiment.accelerator.wait_for_everyone()
    experiment.log(f"tuning {method.name} {key} {language} seed {seed}: validation "
                   f"{wanted['metric']} {trial['metrics']['validation'][wanted['metric']]:.2f}")
    return trial


def choose(method: str, wanted: dict, trials: list[dict]) -> dict:
    """The grid point with the best mean validation score over the trials (ties: grid order)."""
    metric = wanted["metric"]
    points = []
    for point in wanted["points"]:
        key = point_key(point)
        scores = {f"{t['language']}/seed-{t['seed']}": t["metrics"]["validation"][metric]
                  for t in trials if t["key"] == key}
        if len(scores) != len(wanted["languages"]) * len(wanted["seeds"]):
            raise FlareError(f"tuning {method}: point {key} has {len(scores)} trials, expected "
                             f"{len(wanted['languages']) * len(wanted['seeds'])}")
        budgets = [t["budget"] for t in trials if t["key"] == key]
        points.append({"point": point, "key": key, "mean": statistics.fmean(scores.values()), "scores": scores,
                       "optimizer_steps": statistics.fmean(b["optimizer_steps"] for b in budgets),
                       "stopped_early": sum(stopped_early(t["training"]) for t in trials if t["key"] == key)})
    best = max(range(len(points)), key=lambda i: (_finite(points[i]["mean"]), -i))
    return {"method": method, "metric": metric, "split": "validation", "grid": wanted["grid"],
            "languages": wanted["languages"], "seeds": wanted["seeds"], "points": points,
            "chosen": points[best]["point"], "chosen_key": points[best]["key"], "chosen_mean": points[best]["mean"],
            "finished": finished_at()}


def stale_choice(result: dict, selection: dict | None) -> str | None:
    """Why a finished final run (its result record) is no longer its method's final run: it was
    trained at a grid point other than the one `selection` (the method's current choice; None: not
    tuned) chooses, as after a grid widened once it had run. None when it still is."""
    recorded = (result.get("selection") or {}).get("chosen")
    chosen = selection["chosen"] if selection else None
    if _same(recorded, chosen):
        return None
    return (f"trained at {point_key(recorded) if recorded else 'untuned settings'}, but its method now "
            + (f"chooses {point_key(chosen)}" if chosen else "has no grid"))


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ---------------------------------------------------------------------- a trial that is a final run
def run_settings(experiment, method: MethodConfig, language: str, seed: int, train_cfg: TrainConfig) -> dict:
    """Everything that makes one training run what it is: the method (at its grid point), its adapter and
    training settings, the language and seed, the rest of the config that changes what a run computes
    (model, task, precision, translation, ...) and the stage-1 record it builds on (its bytes' hash: a
    stage-1 model retrained into another has another record)."""
    record = experiment.stage1_dir_for(seed) / "stage1.json"
    settings = {key: value for key, value in experiment.config.to_dict().items() if key not in NOT_RUN_SETTINGS}
    return _comparable(json.loads(json.dumps({
        "method": asdict(method), "adapter": asdict(method.adapter(experiment.config.adapter)),
        "train": asdict(train_cfg), "language": language, "seed": seed, "config": settings,
        "stage1_record": hashlib.sha256(record.read_bytes()).hexdigest() if record.is_file() else None,
    }, sort_keys=True, default=str)))


def point_settings(experiment, method: MethodConfig, point: dict | None, language: str, seed: int) -> dict:
    """`run_settings` of `method` at a grid point (None: the method untuned)."""
    return run_settings(experiment, method.at(point), language, seed,
                        method.train_config(experiment.config.train, point))


def changed_settings(record: dict, settings: dict) -> list[str]:
    """The settings a finished run's record (a trial or a final result) was made under that differ
    from `settings`, the ones the config gives it now ([] for a record written before 2026-12-08,
    which has none)."""
    recorded = record.get("run_settings")
    return settings_diff(_comparable(recorded), settings) if recorded is not None else []


def check_same_settings(path: Path, record: dict, settings: dict) -> None:
    """A finished run's record is reused only where it was made under `settings` (`changed_settings`):
    runs made under other settings would be compared as if only their method differed."""
    if differ := changed_settings(record, settings):
        raise FlareError(
            f"{path} was made with other settings than the config now gives it ({', '.join(differ[:6])}"
            f"{', ...' if len(differ) > 6 else ''}; the record's `run_settings` has them all), and runs made "
            "under other settings would be compared as if only their method differed. Undo the change, or "
            "give the changed config another output_dir; to redo this run under the new settings, move its "
            "file (and, for a tuning trial, the method's other trials and selection.json) out of the way first.")


def _comparable(settings: dict) -> dict:
    """Run settings without NOT_RUN_TRAIN_SETTINGS nor the method's grid (`search`: which runs happen,
    not what this one computes; a grid widened after a trial ran leaves the trial the same run), also
    those of a record written before they were left out."""
    return {**settings, "method": {k: v for k, v in settings["method"].items() if k != "search"},
            "train": {k: v for k, v in settings["train"].items() if k not in NOT_RUN_TRAIN_SETTINGS}}


def _keep_or_remove(experiment, method: MethodConfig, language: str, seed: int, train_cfg: TrainConfig,
                    run_name: str) -> None:
    """After a trial: keep its checkpoint (with its settings) where the same language and seed have a
    final run, which may be this very run; remove it otherwise."""
    folder = experiment.checkpoint_dir(run_name)
    if language in experiment.config.languages and seed in experiment.config.seeds and (folder / LATEST).is_file():
        (folder / RUN_SETTINGS).write_text(json.dumps(run_settings(experiment, method, language, seed, train_cfg)))
    else:
        remove_checkpoints(folder)


def adopt_trial(experiment, method: MethodConfig, selection: dict | None, language: str, seed: int,
                train_cfg: TrainConfig, run_name: str) -> str | None:
    """The tuning trial that is this final run (the chosen point, same language, seed and settings):
    its kept checkpoint moves to the final's checkpoint folder, from which the final resumes, at its
    end, instead of training again. Returns the trial's record (relative to the output folder), or
    None: no kept trial, the final has a checkpoint of its own, or some setting differs (logged)."""
    if selection is None:
        return None
    trial = trial_name(method.name, selection["chosen_key"], language, seed)
    source, target = experiment.checkpoint_dir(trial), experiment.checkpoint_dir(run_name)
    if not (source / RUN_SETTINGS).is_file() or (target / LATEST).is_file():
        return None
    experiment.stage1(seed)  # retrained first where its weights are missing: the record then says which model
    if _comparable(json.loads((source / RUN_SETTINGS).read_text())) != run_settings(experiment, method, language,
                                                                                      seed, train_cfg):
        experiment.log(f"{run_name}: the tuning trial {trial} was run with other settings (or on another stage-1 "
                       "model); training the final run anew")
        return None
    if experiment.accelerator.is_main_process:
        remove_checkpoints(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
    experiment.accelerator.wait_for_everyone()
    experiment.log(f"{run_name}: the same run as the tuning trial {trial} (language, seed and settings): its "
                   "weights are taken over, not trained again")
    return trial + ".json"
