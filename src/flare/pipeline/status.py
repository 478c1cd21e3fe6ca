"""Where a resumable experiment stands (`flare status`), read from its files only.

Every run its config asks for, in the order `flare run` does them (the stage-1 models, the tuning
trials, then the final runs), is done, running (in a process that holds its lock: `flare run` in
two terminals), interrupted (a checkpoint to resume from) or still to do.
Finished runs give the time they took; the rest get an estimate: the mean time of this experiment's
finished runs of the same kind and method (a final run with none yet, or only finals that took over
their tuning trial: its method's tuning trials), as those runs went, on whatever else the machine
was doing; with none of those, a run with a checkpoint is extrapolated from its own pace (the time
spent per step, times the steps its epochs still allow: early stopping may end it sooner, and the
test evaluation after it is not counted). No model is loaded, no data is read and no score is
shown, so a study can be followed while it runs without seeing its test results before they are
all in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from statistics import mean

from flare.io import lock_holder
from flare.pipeline.checkpoint import checkpoint_meta
from flare.pipeline.runner import NO_ENGLISH
from flare.pipeline.tune import (
    RUN_SETTINGS, SELECTION, changed_settings, plan, planned_trials, point_settings, stale_choice, trial_name,
    tuning_dir,
)

DONE, RUNNING, INTERRUPTED, TO_DO = "done", "running", "interrupted", "to do"
STAGE1, TUNING, FINAL = "stage 1", "tuning", "final"


@dataclass
class Unit:
    """One run of the experiment and where it stands."""

    kind: str  # STAGE1, TUNING or FINAL
    method: str  # "" for stage 1
    language: str
    seed: int | None  # None: the one shared stage-1 model
    state: str  # DONE, RUNNING, INTERRUPTED or TO_DO
    name: str = ""  # the run's name (its checkpoints under checkpoints/, its lock beside them)
    point: str = ""  # a tuning trial's grid point
    detail: str = ""  # what else the state means here
    seconds: float | None = None  # done: the time it took; interrupted: the time spent so far
    left: float | None = None  # the estimated seconds still to go; None: nothing to estimate from
    done_share: float | None = None  # an interrupted or running run: its steps done / the steps it may take
    evaluation_only: bool = False  # a final run that takes over its tuning trial's training
    weights_here: bool = True  # a recorded stage-1 model: its weights are on disk (else retrained on use)

    @property
    def group(self) -> tuple[str, str]:
        return self.kind, self.method


def _resume_from(unit: Unit, meta: dict) -> None:
    """Mark `unit` interrupted at the checkpoint described by `meta` (its state.json)."""
    unit.state = INTERRUPTED
    unit.detail = f"checkpoint after step {meta['step']} ({len(meta.get('history') or [])} evaluation(s))"
    unit.seconds = meta.get("train_seconds", 0.0) + meta.get("eval_seconds", 0.0)
    if meta.get("max_steps") and meta["step"] > 0:  # checkpoints written before 2026-12-07 lack max_steps
        unit.done_share = min(1.0, meta["step"] / meta["max_steps"])


def _budget_seconds(budget: dict) -> float:
    """A run's training, validation and test time (a trial has no test) over every process that
    worked on it: the budget's clocks go on across a resume."""
    return sum(budget.get(key, 0.0) for key in ("train_seconds", "validation_seconds", "eval_seconds"))


def _final_seconds(result: dict) -> float | None:
    """A finished final's time: its budget's (`timings.total_seconds` is the last process's wall
    time only: after a resume, less), or that wall time for a run without training (zero-shot) or
    an older file."""
    budget = result.get("budget") or {}
    if budget.get("optimizer_steps") and isinstance(budget.get("train_seconds"), (int, float)):
        return _budget_seconds(budget)
    return (result.get("timings") or {}).get("total_seconds")


def _stage1_seed(config, seed: int | None) -> int:
    """The seed of the stage-1 model that stage-3 seed `seed` builds on."""
    return config.stage1_seed_for(seed) if config.stage1_seeds is not None else config.stage1_seed


def _stage1_units(experiment) -> list[Unit]:
    config = experiment.config
    units = []
    for seed in config.seeds if config.stage1_seeds is not None else [None]:
        folder = experiment.stage1_dir_for(seed)
        record = folder / "stage1.json"
        unit = Unit(STAGE1, "", experiment.english, _stage1_seed(config, seed), TO_DO,
                    name="" if config.stage1_from else experiment.stage1_run_name(seed))
        if record.is_file():
            recorded = json.loads(record.read_text())
            unit.state = DONE
            unit.seconds = recorded.get("train_seconds", 0.0) + (recorded.get("training") or {}).get(
                "validation_seconds", 0.0)
            if not (folder / "adapter_config.json").is_file():
                unit.weights_here = False
                unit.detail = "weights not here: retrained (and checked) if a run still needs them"
        elif config.stage1_from:
            unit.detail = f"borrowed from {config.stage1_from}: train it there"
        else:
            meta = checkpoint_meta(experiment.checkpoint_dir(experiment.stage1_run_name(seed)))
            if meta is not None:
                _resume_from(unit, meta)
        units.append(unit)
    return units


def _tuning_units(experiment) -> list[Unit]:
    units = []
    for method in experiment.config.methods:
        wanted = plan(experiment, method)
        if wanted is None:
            continue
        for point, key, language, seed, run_name in planned_trials(method, wanted):
            record = experiment.output_dir / f"{run_name}.json"
            folder = experiment.checkpoint_dir(run_name)
            unit = Unit(TUNING, method.name, language, seed, TO_DO, point=key, name=run_name)
            if record.is_file():
                trial = json.loads(record.read_text())
                unit.state = DONE
                unit.seconds = _budget_seconds(trial.get("budget") or {})
                if (folder / RUN_SETTINGS).is_file():
                    unit.detail = "checkpoint kept for the final run it may be"
                _flag_changed(unit, trial, point_settings(experiment, method, point, language, seed))
            elif (meta := checkpoint_meta(folder)) is not None:
                _resume_from(unit, meta)
            units.append(unit)
    return units


def _flag_changed(unit: Unit, record: dict, settings: dict) -> None:
    """Say so where a finished run was made under settings other than the config's now (`flare run`
    stops there: tune.check_same_settings)."""
    if differ := changed_settings(record, settings):
        unit.detail = f"made under other settings ({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''}): " \
                      "flare run stops here"


def _kept_trial(experiment, method: str, key: str, language: str, seed: int) -> bool:
    """Whether the chosen trial on this language and seed kept its checkpoint for the final run."""
    return (experiment.checkpoint_dir(trial_name(method, key, language, seed)) / RUN_SETTINGS).is_file()


def _final_units(experiment) -> list[Unit]:
    config = experiment.config
    units = []
    selections = {}  # each tuned method's choice, where made
    for method in config.methods:
        selection_file = tuning_dir(experiment, method) / SELECTION
        if selection_file.is_file():
            selections[method.name] = json.loads(selection_file.read_text())
    chosen = {name: selection["chosen_key"] for name, selection in selections.items()}
    for language in config.languages:
        for method in config.methods:
            companion = method.spec.no_english_row and config.no_english_rows
            for seed in config.seeds:
                path = experiment.result_path(method, language, seed)
                unit = Unit(FINAL, method.name, language, seed, TO_DO,
                            name=experiment.run_name(method, language, seed))
                result = json.loads(path.read_text()) if path.is_file() else None
                stale = stale_choice(result, selections[method.name]) if result and method.name in selections else None
                if result and not stale:
                    unit.state = DONE
                    unit.seconds = _final_seconds(result)
                    unit.evaluation_only = "trained_in" in result  # it took over its tuning trial
                    if companion and not experiment.result_path(method.name + NO_ENGLISH, language, seed).is_file():
                        unit.detail = "its no-English row is missing (made from the saved adapter on the next run)"
                    point = selections[method.name]["chosen"] if method.name in selections else None
                    _flag_changed(unit, result, point_settings(experiment, method, point, language, seed))
                elif (meta := checkpoint_meta(experiment.checkpoint_dir(experiment.run_name(method, language, seed)))):
                    _resume_from(unit, meta)
                elif method.name in chosen and _kept_trial(experiment, method.name, chosen[method.name], language,
                                                           seed):
                    unit.evaluation_only = True
                    unit.detail = "takes over its tuning trial (same settings: evaluation only)"
                elif stale:  # its result is superseded by the next `flare run`
                    unit.detail = f"{stale}: runs again"
                units.append(unit)
    return units


def _estimate(units: list[Unit]) -> None:
    """Fill `left` of the runs not done from the finished runs of their group (not from finals that
    took over a trial: their time is an evaluation's), less the time already spent; from a
    checkpointed run's own pace where there are none, or where it has spent more than their mean."""
    finished: dict[tuple[str, str], list[float]] = {}
    for unit in units:
        if unit.state == DONE and unit.seconds is not None and not unit.evaluation_only:
            finished.setdefault(unit.group, []).append(unit.seconds)
    for unit in units:
        times = finished.get(unit.group) or (finished.get((TUNING, unit.method)) if unit.kind == FINAL else None)
        if unit.state == DONE or unit.evaluation_only:  # evaluation only: not like a trained run
            continue
        spent = unit.seconds or 0.0
        if times and mean(times) > spent:
            unit.left = mean(times) - spent
        elif unit.done_share and spent:  # at most: early stopping may end it sooner
            unit.left = spent * (1.0 - unit.done_share) / unit.done_share
        elif times:
            unit.left = 0.0


def experiment_status(experiment) -> list[Unit]:
    """Every run of `experiment` (a `flare.pipeline.runner.Experiment`) and where it stands."""
    units = _stage1_units(experiment) + _tuning_units(experiment) + _final_units(experiment)
    for unit in units:
        if unit.state != DONE and unit.name and (pid := lock_holder(experiment.checkpoint_dir(unit.name))):
            unit.state = RUNNING
            unit.detail = f"process {pid}" + (f"; {unit.detail}" if unit.detail else "")
    _estimate(units)
    needed = {_stage1_seed(experiment.config, u.seed) for u in units if u.kind != STAGE1 and u.state != DONE}
    for unit in (u for u in units if u.kind == STAGE1):
        if unit.seed in needed:
            if not unit.weights_here:  # recorded, retrained before the runs that need it
                unit.left = unit.seconds
        elif unit.state == TO_DO and not experiment.config.stage1_from:  # the runs built on it are all done
            unit.state, unit.left = DONE, None
            unit.detail = "not kept here (no stage1.json), and no run left needs it"
    return units


def _hours(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 3600:.2f}"


def status_markdown(units: list[Unit], show_done: bool = False) -> str:
    """The runs not done (every run with `show_done`) as a table, then a summary per kind."""
    lines = ["| kind | method | point | language | seed | state | h | h left | detail |",
             "|:---|:---|:---|:---|---:|:---|---:|---:|:---|"]
    for unit in units:
        if unit.state != DONE or show_done or unit.left:
            lines.append(f"| {unit.kind} | {unit.method} | {unit.point} | {unit.language} | "
                         f"{'' if unit.seed is None else unit.seed} | {unit.state} | {_hours(unit.seconds)} | "
                         f"{_hours(unit.left)} | {unit.detail} |")
    if len(lines) == 2:
        lines = ["Every run is done."]
    lines += ["", "| kind | runs | done | running | interrupted | to do | h taken | h left (estimated) | "
              "without an estimate |", "|:---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in (STAGE1, TUNING, FINAL):
        of_kind = [u for u in units if u.kind == kind]
        if not of_kind:
            continue
        counts = {state: sum(u.state == state for u in of_kind) for state in (DONE, RUNNING, INTERRUPTED, TO_DO)}
        taken = sum(u.seconds or 0.0 for u in of_kind if u.state == DONE)
        left = sum(u.left or 0.0 for u in of_kind)
        unknown = sum(u.state != DONE and u.left is None for u in of_kind)
        lines.append(f"| {kind} | {len(of_kind)} | {counts[DONE]} | {counts[RUNNING]} | {counts[INTERRUPTED]} | "
                     f"{counts[TO_DO]} | {_hours(taken)} | {_hours(left)} | {unknown} |")
    lines += ["", "h left: the mean time of this experiment's finished runs of the same kind and method (a final "
              "run with none yet, or only finals that took over a trial: its method's tuning trials), less the "
              "time a running or interrupted run has spent (at its last checkpoint); taken as those runs went, "
              "beside whatever else ran. With none of those, a run's own pace at its last checkpoint times the "
              "steps its epochs still allow (early stopping may end it sooner; its test evaluation not counted). "
              "No score is shown."]
    return "\n".join(lines)
