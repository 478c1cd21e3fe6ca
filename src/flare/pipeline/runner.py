"""The whole experiment: stage 1 once, then every (method, language, seed) run, each written
to its own JSON file; finished runs are skipped, so a stopped experiment picks up where it was."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate.utils import set_seed

from flare.pipeline import stages
from flare.errors import ConfigError, DataError, FlareError
from flare.io import folder_lock
from flare.pipeline.checkpoint import remove_checkpoints, settings_diff
from flare.pipeline.config import MethodConfig, TrainConfig, save_config
from flare.pipeline.data import build_features
from flare.pipeline.inputs import ExperimentInputs
from flare.environment import cpu_record, environment_record, finished_at
from flare.methods import get_method
from flare.pipeline.sanity import learning_warnings
from flare.pipeline.training import FitResult, fit, predict
from flare.tasks import get_task
from flare.results.schema import (  # noqa: F401 (HYPERPARAMETERS: for old imports)
    HYPERPARAMETERS, RESULT_SCHEMA, hyperparameters, selection_summary, write_json,
)
from flare.results.training import NOT_THE_RECORDED_MODEL, RETRAINED_INTO_ANOTHER

NO_ENGLISH = "-no-english"  # the FLARE row scored with no source at test time


@dataclass
class _Trained:
    """A stage-3 model after training (zero-shot / translate-test: untrained) and its data."""

    model: object
    fit: FitResult | None = None
    train: list | None = None
    valid: list | None = None
    valid_features: list | None = None
    test_features: list | None = None
    settings: dict | None = None  # what makes the run this run (tune.run_settings): kept in its record


class Experiment(ExperimentInputs):
    """Stage 1, stage 3 and the whole experiment, over `ExperimentInputs` (the data side)."""

    def __init__(self, config, log=print):
        super().__init__(config, log)
        self._checked_stage1: set[Path] = set()  # borrowed stage-1 models (stage1_from) already checked

    def checkpoint_dir(self, name: str) -> Path:
        return self.output_dir / "checkpoints" / name

    def run_lock(self, name: str, wait: bool = True):
        """The lock of run `name` (a file beside its checkpoint folder): two processes on one
        experiment (`flare run` twice, side by side) never train the same run. It yields True while
        held; with `wait=False`, False at once where another process trains the run. The ranks of one
        multi-process (accelerate) job train their runs together, so such a job takes no lock: do
        not run a second job beside it on the same output folder."""
        if self.accelerator.num_processes > 1:
            return contextlib.nullcontext(True)
        return folder_lock(self.checkpoint_dir(name), wait=wait,
                           on_wait=lambda: self.log(f"{name}: another process is training it; waiting for it"))

    def _trackers(self, name: str) -> list:
        """The configured experiment trackers for one training run (log_with; `tensorboard: true`
        is the same as log_with: [tensorboard]); TensorBoard files go to <output_dir>/tensorboard/<run>."""
        from flare.pipeline.training import make_trackers

        names = list(dict.fromkeys([*self.config.log_with, *(["tensorboard"] if self.config.tensorboard else [])]))
        if not names or not self.accelerator.is_main_process:
            return []
        return make_trackers(names, name, self.output_dir / "tensorboard",
                             {"run": name, "task": self.config.task, "model": self.config.model})

    # ------------------------------------------------------------------ stage 1
    @property
    def stage1_dir(self) -> Path:
        """The shared stage-1 model (no `stage1_seeds`); with `stage1_seeds`, see `stage1_dir_for`.
        With `stage1_from`, the stage-1 folder of that other experiment (read, never written)."""
        if self.config.stage1_from:
            return Path(self.config.stage1_from) / "stage1"
        return self.output_dir / "stage1"

    def stage1_dir_for(self, seed: int | None = None) -> Path:
        """The stage-1 model a stage-3 seed builds on: `stage1/` (one shared model, `stage1_seed`), or
        with `stage1_seeds` its own `stage1/seed-<s>/` (seeds[i] pairs with stage1_seeds[i])."""
        stage1_seed = self.config.stage1_seed_for(seed) if seed is not None else None
        return self.stage1_dir if stage1_seed is None else self.stage1_dir / f"seed-{stage1_seed}"

    def stage1_run_name(self, seed: int | None = None) -> str:
        """The name of the stage-1 training run of `seed` (its checkpoints, its trackers): `stage1` or
        `stage1/seed-<s>`; only for a model trained here (not `stage1_from`)."""
        return self.stage1_dir_for(seed).relative_to(self.output_dir).as_posix()

    def stage1(self, seed: int | None = None, wait: bool = True) -> Path:
        """Plain LoRA (and the task head) on English task data, trained once and reused: the shared
        model, or with `stage1_seeds` the one of stage-3 seed `seed` (None: every seed's, except those
        another process is training: the runs built on them wait for them). A model another process
        is training is waited for (with `wait=False`: left to it, and its folder returned as is)."""
        if seed is None and self.config.stage1_seeds is not None:
            for each in self.config.seeds:
                self.stage1(each, wait=False)
            return self.stage1_dir
        if self.config.stage1_from:  # another experiment's model: read, never trained here
            return self._stage1(seed)
        name = self.stage1_run_name(seed)
        with self.run_lock(name, wait=wait) as ours:
            if ours:
                return self._stage1(seed)
        self.log(f"{name}: another process is training it; the runs built on it will wait for it")
        return self.stage1_dir_for(seed)

    def _stage1(self, seed: int | None) -> Path:
        stage1_seed = self.config.stage1_seed_for(seed) if seed is not None else None
        folder = self.stage1_dir_for(seed)
        marker = folder / "stage1.json"
        recorded = None
        if marker.is_file() and not (folder / "adapter_config.json").is_file():
            # studies commit stage1.json, not the weights: a fresh checkout retrains the model and
            # checks that it is the recorded one (same seed and settings: the same curve and scores)
            if self.config.stage1_from:
                raise ConfigError(f"stage1_from: {folder} records a stage-1 model (stage1.json) but holds no "
                                  "weights (they are not committed); retrain them with `flare finetune` on the "
                                  f"config of the experiment in {self.config.stage1_from}")
            recorded = json.loads(marker.read_text())
            self._check_stage1_settings(folder, recorded, seed)
            self.log(f"stage 1: {folder} records a model whose weights are not here; retraining it")
        elif marker.is_file():
            if self.config.stage1_from:
                self._check_borrowed_stage1(marker)
            else:
                self._check_stage1_settings(folder, json.loads(marker.read_text()), seed)
            self.log(f"stage 1: reusing {folder}")
            return folder
        if self.config.stage1_from:
            raise ConfigError(f"stage1_from: {folder} holds no stage-1 model (no stage1.json); train it first "
                              f"with `flare finetune` on the config of the experiment in {self.config.stage1_from} "
                              "(same seeds), or remove stage1_from to train one here")
        cfg = self.config
        stage1_seed = cfg.stage1_seed if stage1_seed is None else stage1_seed
        name = self.stage1_run_name(seed)
        train = self.load(self.english, "train", cfg.stage1.max_train_examples, stage1_seed)
        valid = self.load(self.english, "validation", cfg.stage1.max_eval_examples, stage1_seed)
        test = self._stage1_test(stage1_seed)
        head = self.head
        set_seed(stage1_seed)  # the new head and LoRA weights are drawn from the seeded generator
        model = stages.new_stage1_model(cfg, head)
        features = {name: build_features(ex, head, "zero-shot") for name, ex in
                    (("train", train), ("validation", valid), ("test", test))}
        built = self.runs_built_on(folder) if recorded is not None and cfg.stage1_mismatch == "stop" else []
        settings = stages.arithmetic_settings_differ(recorded, cpu_record()) if recorded is not None else None
        if settings and built:  # it could only be a different model: say so before training
            self._stage1_mismatch(folder, name, f"its instruction-set settings differ: {settings}; set them as "
                                  "recorded in the environment before retraining", built, recorded)
        elif settings:
            self._warn([f"stage 1: {folder} was recorded under other instruction-set settings ({settings}): "
                        "the retrain will likely be a different model"])

        def follow_record(history: list[dict]) -> None:  # only where runs were built on the record
            drift = stages.stage1_curve_drift(recorded, history)
            if drift is not None:
                self._stage1_mismatch(folder, name, drift, built, recorded)

        result = fit(model, head, features["train"], features["validation"], cfg.stage1, stage1_seed,
                     lambda p: self.score(p, valid)[self.primary_metric], self.accelerator,
                     desc=f"stage 1 (en, seed {stage1_seed})", trackers=self._trackers(name),
                     checkpoint_dir=self.checkpoint_dir(name), resume=cfg.resume,
                     settings=self._stage1_settings(seed), log=self.log, on_evaluation=follow_record if built else None)
        model = self.accelerator.unwrap_model(model)
        test_scores = None
        if test:
            test_scores = self.score(predict(model, head, features["test"], cfg.stage1.eval_batch_size,
                                             head.pad_id, self.accelerator), test)
        valid_predictions = result.best_predictions
        if valid_predictions is None:  # its best evaluation ran before a resume
            valid_predictions = predict(model, head, features["validation"], cfg.stage1.eval_batch_size,
                                        head.pad_id, self.accelerator)
        references = self.reference_scores(self.english, {"validation": valid, "test": test})
        warnings = learning_warnings("stage 1 (English)", {"validation": valid_predictions},
                                     {"validation": self.score(valid_predictions, valid)}, references,
                                     self.primary_metric)
        same_as_recorded = False
        if recorded is not None:
            differences = stages.stage1_differences(recorded, result.history, test_scores, cpu_record())
            if differences and built:
                self._stage1_mismatch(folder, name, "its curve's length or its test scores differ", built, recorded)
            warnings += differences
            same_as_recorded = not differences
            if same_as_recorded:  # the record (its timings included) stays as it was
                self.log(f"stage 1: {folder} retrained: the recorded validation curve and test scores, to 1e-6")
        self._warn(warnings)
        if self.accelerator.is_main_process:  # with several processes, one writes
            model.save_pretrained(str(folder))
            if recorded is not None and not same_as_recorded:  # stage1_mismatch=continue
                warnings += self._supersede(folder, name)
            if not same_as_recorded:
                write_json(marker, {"language": self.english, "seed": stage1_seed, "task": cfg.task, "model": cfg.model,
                                    "revision": cfg.revision, "text_prefix": cfg.text_prefix, "precision": cfg.precision,
                                    "best_epoch": result.best_epoch,
                                    "history": result.history, "test": test_scores,
                                    "train_seconds": result.train_seconds, "training": result.summary(),
                                    "reference_scores": references, "warnings": warnings,
                                    "cpu": cpu_record(), "settings": self._stage1_settings(seed)})
            remove_checkpoints(self.checkpoint_dir(name))
        self.accelerator.wait_for_everyone()
        if test_scores is not None:
            self.log(f"stage 1: English test {self.primary_metric} = {test_scores[self.primary_metric]:.2f}")
        return folder

    def _stage1_settings(self, seed: int | None) -> dict:
        """What makes a stage-1 model the one it is besides the task, model, revision, prefix and
        precision its record names: its training settings and seed (recorded in stage1.json and in
        its checkpoints; where checkpoints go and how often, not)."""
        from flare.pipeline.tune import NOT_RUN_TRAIN_SETTINGS

        train = {k: v for k, v in asdict(self.config.stage1).items() if k not in NOT_RUN_TRAIN_SETTINGS}
        stage1_seed = self.config.stage1_seed_for(seed) if seed is not None else None
        stage1_seed = self.config.stage1_seed if stage1_seed is None else stage1_seed
        return json.loads(json.dumps({"stage1": train, "seed": stage1_seed}, sort_keys=True, default=str))

    def _check_stage1_settings(self, folder: Path, recorded: dict, seed: int | None) -> None:
        """A recorded stage-1 model is reused (or retrained as recorded) only under the settings it was
        trained with; a record written before 2026-12-08 has none and is taken as it is."""
        differ = settings_diff(recorded["settings"], self._stage1_settings(seed)) if "settings" in recorded else []
        if differ:
            raise FlareError(
                f"stage 1: {folder} was trained with other settings than the config now gives it "
                f"({', '.join(differ[:6])}{', ...' if len(differ) > 6 else ''}; its stage1.json has them all), and "
                "every run of this experiment builds on it. Set them back, or give the changed config another "
                "output_dir.")

    def runs_built_on(self, folder: Path) -> list[Path]:
        """This experiment's final results (`results/`) whose runs used the stage-1 model in `folder`
        (their `stage1` block): the runs a new model's would be paired with. Tuning trials are not
        counted: they only choose settings, and nothing is compared with them."""
        here = os.path.relpath(folder, self.output_dir)
        return [path for path in sorted((self.output_dir / "results").glob("*/*/seed-*.json"))
                if (json.loads(path.read_text()).get("stage1") or {}).get("dir") == here]

    def _supersede(self, folder: Path, name: str) -> list[str]:
        """A retrained stage-1 model replaces its record (`stage1_mismatch: continue`): the final
        results built on the old model (and their saved adapters) no longer pair with anything built
        from now on, so they move to superseded/<stage-1 name>-<UTC time>/ (same layout, kept for
        the record) and `--resume` reruns them on the new model."""
        built = self.runs_built_on(folder)
        if not built:
            return []
        target = self._move_to_superseded(
            [(path.parent.parent.name, path.parent.name, int(path.stem.removeprefix("seed-"))) for path in built],
            name.replace("/", "-"))
        message = (f"stage 1: {name} {RETRAINED_INTO_ANOTHER} (stage1_mismatch=continue); the "
                   f"{len(built)} results built on the earlier one moved to "
                   f"{os.path.relpath(target, self.output_dir)} (--resume rebuilds them on this one)")
        self._warn([message])
        return [message]

    def _move_to_superseded(self, runs: list[tuple[str, str, int]], label: str) -> Path:
        """Move the result files and saved adapters of `runs` (method name, language, seed) to
        superseded/<label>-<UTC time>/, in the same layout, kept for the record (the report reads
        results/ only); returns that folder. The caller is the one process that writes."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.output_dir / "superseded" / f"{label}-{stamp}"
        for method, language, seed in runs:
            for each in (self.result_path(method, language, seed), self.adapter_dir(method, language, seed)):
                if each.exists():
                    destination = target / each.relative_to(self.output_dir)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    each.rename(destination)
        return target

    def _stage1_mismatch(self, folder: Path, name: str, drift: str, built: list[Path], recorded: dict) -> None:
        """A stage-1 retrain has left its record while runs built on the recorded model exist: runs
        built on the new one would not pair with them, so stop (`stage1_mismatch: continue` overrides)."""
        examples = ", ".join(os.path.relpath(path, self.output_dir) for path in built[:3])
        raise FlareError(
            f"stage 1: {folder} retrained here {NOT_THE_RECORDED_MODEL} ({drift}; "
            f"{stages.machines(recorded, cpu_record())}). {len(built)} result files of this experiment were "
            f"built on the recorded model ({examples}{', ...' if len(built) > 3 else ''}), and runs built on a "
            "different one would not pair with them. Retrain on a machine like the recording one, with the "
            "recorded thread count and library versions (bf16 matmuls differ between CPUs with and without "
            "AMX; ONEDNN_MAX_CPU_ISA caps the instructions oneDNN uses), or set stage1_mismatch=continue to "
            "build on the new model (its record replaces the old one, the results built on the old one move to "
            "superseded/ and --resume rebuilds them; with --resume it goes on from the "
            f"checkpoint kept in {self.checkpoint_dir(name)}: delete that folder before retraining elsewhere or "
            "with other settings). The record is unchanged.")

    def _check_borrowed_stage1(self, marker: Path) -> None:
        """A stage-1 model of another experiment (`stage1_from`) must fit this one: the same model (and
        revision), and the same task, or two QA tasks (span heads have no label set)."""
        if marker in self._checked_stage1:
            return
        self._checked_stage1.add(marker)
        made = json.loads(marker.read_text())
        cfg = self.config
        if "task" not in made:  # written before stage1.json recorded its task and model
            self.log(f"stage 1: {marker} does not record its task and model; not checked against this config")
            return
        if (made["model"], made.get("revision")) != (cfg.model, cfg.revision):
            raise ConfigError(f"stage1_from: {marker.parent} was trained on model {made['model']!r} "
                              f"(revision {made.get('revision')}), this config's model is {cfg.model!r} "
                              f"(revision {cfg.revision}); use the same model or train stage 1 here")
        if made["task"] != cfg.task and not (get_task(made["task"]).kind == "qa" == self.task.kind):
            raise ConfigError(f"stage1_from: {marker.parent} was trained on task {made['task']!r}, this config's "
                              f"task is {cfg.task!r}; only QA tasks can share a stage-1 model (a classifier's "
                              "head belongs to its label set)")
        if made.get("text_prefix", "") != cfg.text_prefix:
            self.log(f"stage 1: warning: {marker.parent} was trained with text_prefix {made.get('text_prefix')!r}, "
                     f"this config uses {cfg.text_prefix!r}")
        if made.get("precision", cfg.precision) != cfg.precision:  # recorded since 2026-12-05
            self.log(f"stage 1: warning: {marker.parent} was trained with precision {made['precision']!r}, this "
                     f"config evaluates with {cfg.precision!r}")

    def _stage1_test(self, seed: int | None = None) -> list:
        """The English test set of stage 1; for QA without gold answers there (an older, blanked copy
        of TyDiQA's English dev file) stage 1 goes on without a test score."""
        seed = self.config.stage1_seed if seed is None else seed
        try:
            test = self.load(self.english, "test", self.config.stage1.max_eval_examples, seed)
        except DataError as err:
            if self.task.kind != "qa":
                raise
            self.log(f"stage 1: the English test set is not scored: {err}")
            return []
        if self.task.kind == "qa" and not all(e.answers for e in test):
            self.log("stage 1: the English test set has questions without gold answers: not scored")
            return []
        return test

    # ------------------------------------------------------------------ stage 3
    def result_path(self, method: MethodConfig | str, language: str, seed: int) -> Path:
        name = method if isinstance(method, str) else method.name
        return self.output_dir / "results" / name / language / f"seed-{seed}.json"

    @staticmethod
    def run_name(method: MethodConfig | str, language: str, seed: int) -> str:
        """A final run's name (its checkpoints, its trackers, its progress bar)."""
        return f"{method if isinstance(method, str) else method.name}/{language}/seed-{seed}"

    def adapter_dir(self, method: MethodConfig | str, language: str, seed: int) -> Path:
        name = method if isinstance(method, str) else method.name
        return self.output_dir / "adapters" / name / language / f"seed-{seed}"

    def train_config(self, method: MethodConfig) -> tuple[TrainConfig, dict | None]:
        """The training settings of a method's final runs: the config's (and the method's own
        `train:`), with the grid point chosen on validation when the method is tuned (`search:`;
        the tuning runs first if its selection is missing); and that selection (None: not tuned)."""
        from flare.pipeline.tune import selection_for

        selection = selection_for(self, method)
        return method.train_config(self.config.train, selection["chosen"] if selection else None), selection

    def _train(self, method: MethodConfig, language: str, seed: int, train_cfg: TrainConfig, run_name: str,
               test: list | None = None, resume: bool = False) -> _Trained:
        """The stage-3 model of one (method, language, seed), trained with `train_cfg` on the
        language's training split, the best evaluation on its validation split restored. `test`
        (None in tuning, which never reads it) gets its features before training. `resume` (or the
        config's) continues from the run's checkpoint."""
        from flare.pipeline.tune import run_settings

        cfg = self.config
        name = method.method
        encoder = self._encoder_source(language) if method.spec.source == "encoder" else None
        set_seed(seed)
        model = stages.stage3_model(name, cfg, method.adapter(cfg.adapter), self.head, self.stage1(seed),
                                    encoder.hidden_size if encoder else None, seed)
        settings = run_settings(self, method, language, seed, train_cfg)
        test_features = self._features(test, name, encoder, f"{language}/test", model) if test is not None else None
        if not method.spec.trained:
            return _Trained(model.to(self.accelerator.device), test_features=test_features, settings=settings)
        train = self.load(language, "train", train_cfg.max_train_examples, seed)
        valid = self.load(language, "validation", train_cfg.max_eval_examples, seed)
        valid_features = self._features(valid, name, encoder, f"{language}/validation", model)
        train_features = self._features(train, name, encoder, f"{language}/train", model)
        fit_result = fit(model, self.head, train_features, valid_features, train_cfg, seed,
                         lambda p: self.score(p, valid, name)[self.primary_metric], self.accelerator,
                         desc=run_name.replace("/", " "), trackers=self._trackers(run_name),
                         checkpoint_dir=self.checkpoint_dir(run_name), resume=cfg.resume or resume,
                         settings=settings, log=self.log)
        return _Trained(self.accelerator.unwrap_model(model), fit_result, train, valid, valid_features, test_features,
                        settings)

    def _describe_for_card(self, model, method: MethodConfig, language: str) -> None:
        """What the saved adapter's model card says: the hub id of an alias (not the local cache
        path it was loaded from), the task, the method and the languages."""
        config = getattr(model, "flare_config", None)
        if config is None:
            return
        from flare.pretrained.registry import get_spec

        spec = get_spec(self.config.model)
        config.base_model_revision = config.base_model_revision or self.config.revision
        config.card = {**config.card, "base_model": spec.hub_id if spec else self.config.model,
                       "task": self.config.task, "method": method.name, "languages": [language, self.english]}

    def _best_validation_predictions(self, trained: _Trained) -> list:
        """The restored best weights' validation predictions: those of their evaluation during
        training (the same weights, the same features), predicted again only when that evaluation
        ran before a resume. Saves one validation pass per run (a Gemma QA validation: ~12 min)."""
        if trained.fit.best_predictions is not None:
            return trained.fit.best_predictions
        return self._predict(trained.model, trained.valid_features)

    def _predict(self, model, features: list[dict]) -> list:
        return predict(model, self.head, features, self.config.train.eval_batch_size, self.head.pad_id,
                       self.accelerator)

    def run_one(self, method: MethodConfig, language: str, seed: int) -> dict:
        """One (method, language, seed) run's result (see `run_with_companions` for the extra rows)."""
        return self.run_with_companions(method, language, seed)[0][1]

    def run_with_companions(self, method: MethodConfig, language: str, seed: int) -> list[tuple[Path, dict]]:
        """The run's result and, for a FLARE method (`no_english_rows`), the result of the same
        weights scored with no source at test time ("<name>-no-english"), as (path, result) pairs."""
        cfg = self.config
        name = method.method
        train_cfg, selection = self.train_config(method)
        method = method.at(selection["chosen"] if selection else None)  # a searched fusion or offset
        test = self.load(language, "test")
        if self.task.kind == "qa":
            self._require_answers(test, f"{language}/test")
            if method.spec.input == "english":
                self._require_answers([e.english for e in test], f"{language}/test (English side)")
        from flare.pipeline.tune import adopt_trial

        run_name = self.run_name(method, language, seed)
        started = time.perf_counter()
        trial = adopt_trial(self, method, selection, language, seed, train_cfg, run_name)  # the same run, done
        trained = self._train(method, language, seed, train_cfg, run_name, test, resume=trial is not None)
        model, fit_result = trained.model, trained.fit
        predictions = {}
        valid_scores = None
        if fit_result is not None:
            if hasattr(model, "save_pretrained") and self.accelerator.is_main_process:
                self._describe_for_card(model, method, language)
                model.save_pretrained(self.adapter_dir(method, language, seed))
            predictions["validation"] = self._best_validation_predictions(trained)
            valid_scores = self.score(predictions["validation"], trained.valid, name)
        eval_started = time.perf_counter()
        predictions["test"] = self._predict(model, trained.test_features)
        eval_seconds = time.perf_counter() - eval_started
        references = self.reference_scores(language, {"validation": trained.valid or [], "test": test})
        result = self._result(method.name, name, language, seed, test, predictions, valid_scores, references,
                              fit_result, train_cfg, selection, eval_seconds, time.perf_counter() - started)
        result["run_settings"] = trained.settings  # a later `flare run` reuses the result only under these
        if trial is not None:
            result["trained_in"] = trial
        results = [(self.result_path(method, language, seed), result)]
        if method.spec.no_english_row and cfg.no_english_rows:
            results.append(self._no_english(method, language, seed, model, test, trained.valid, result))
        return results

    def _no_english(self, method: MethodConfig, language: str, seed: int, model, test: list, valid: list | None,
                    trained_result: dict) -> tuple[Path, dict]:
        """The FLARE weights scored with no source (its plain-LoRA path): what a deployment without MT
        gets. Same training (copied from the trained run), no second training."""
        started = time.perf_counter()
        test_features = build_features(test, self.head, "lora", f"{language}/test")
        predictions = {"test": self._predict(model, test_features)}
        eval_seconds = time.perf_counter() - started
        valid_scores = None
        if valid:
            predictions["validation"] = self._predict(model, build_features(valid, self.head, "lora"))
            valid_scores = self.score(predictions["validation"], valid)
        name = method.name + NO_ENGLISH
        result = {**trained_result, "method": name, "no_source_at_test": True, "weights_from": method.name,
                  "metrics": {"test": self.score(predictions["test"], test),
                              **({"validation": valid_scores} if valid_scores else {})},
                  "timings": {**(trained_result.get("timings") or {}), "eval_seconds": eval_seconds},
                  "predictions": self._prediction_record(test, predictions["test"], method.method, language)}
        result["budget"] = {**(trained_result.get("budget") or {}), "eval_seconds": eval_seconds}
        result["reference_scores"] = trained_result.get("reference_scores") or self.reference_scores(
            language, {"validation": valid or [], "test": test})
        result["warnings"] = learning_warnings(f"{name} {language} seed {seed}", predictions, result["metrics"],
                                               result["reference_scores"], self.primary_metric)
        self._warn(result["warnings"])
        return self.result_path(name, language, seed), result

    def _prediction_record(self, test: list, predicted: list, method: str, language: str) -> dict:
        """The test predictions by example id. The gold is left out where it is the data's own
        (``flare compare`` reads it again from the data by id, so a result file holds no copy of the
        data's labels or answers) and stored where a machine made it: QA translate-test's English
        answers when the English side is machine translation (the answers projected through it)."""
        record = {"ids": [e.id for e in test], "predicted": predicted}
        if get_method(method).scored_on_english(self.task.kind) and self.mt_plan(language, "test") == "english":
            record["gold"] = self.references(test, method)
        return record

    def _result(self, method_name: str, name: str, language: str, seed: int, test: list, predictions: dict,
                valid_scores: dict | None, references: dict | None, fit_result, train_cfg: TrainConfig,
                selection: dict | None, eval_seconds: float, total_seconds: float) -> dict:
        cfg = self.config
        scores = {"test": self.score(predictions["test"], test, name),
                  **({"validation": valid_scores} if valid_scores else {})}
        warnings = learning_warnings(f"{method_name} {language} seed {seed}", predictions, scores, references,
                                     self.primary_metric)
        self._warn(warnings)
        train_seconds = fit_result.train_seconds if fit_result else 0.0
        return {
            "schema": RESULT_SCHEMA, "task": cfg.task, "model": cfg.model, "method": method_name,
            "base_method": name, "language": language, "seed": seed,
            "metrics": scores,
            "primary_metric": self.primary_metric,
            "timings": {"train_seconds": train_seconds, "eval_seconds": eval_seconds, "total_seconds": total_seconds},
            "training": fit_result.summary() if fit_result else None,
            "budget": {"optimizer_steps": fit_result.steps if fit_result else 0,
                       "examples_seen": fit_result.examples_seen if fit_result else 0,
                       "trainable_parameters": fit_result.trainable_parameters if fit_result else 0,
                       "train_seconds": train_seconds,
                       "validation_seconds": fit_result.validation_seconds if fit_result else 0.0,
                       "eval_seconds": eval_seconds,
                       "hyperparameters": hyperparameters(train_cfg) if fit_result else None},
            "selection": selection_summary(selection, self.output_dir),
            "reference_scores": references,
            "warnings": warnings,
            "stage1": {"dir": os.path.relpath(self.stage1_dir_for(seed), self.output_dir),
                       "seed": cfg.stage1_seed_for(seed) or cfg.stage1_seed},
            "english_side": self.english_side,
            "translation": self.translation_record(language),
            **self._label_mismatch_record(language),
            "predictions": self._prediction_record(test, predictions["test"], name, language),
            "config": cfg.to_dict(),
            "environment": environment_record(cfg.model, str(self.resolved.path_or_id), cfg.revision,
                                              str(self.accelerator.device)),
            "finished": finished_at(),
        }

    def run_trial(self, method: MethodConfig, language: str, seed: int, train_cfg: TrainConfig,
                  run_name: str) -> dict:
        """One tuning run: train with `train_cfg`, score the restored best weights on validation.
        The test split is never read."""
        trained = self._train(method, language, seed, train_cfg, run_name)
        predictions = self._best_validation_predictions(trained)
        scores = {"validation": self.score(predictions, trained.valid, method.method)}
        references = self.reference_scores(language, {"validation": trained.valid})
        warnings = learning_warnings(f"tuning {run_name}", {"validation": predictions}, scores, references,
                                     self.primary_metric)
        self._warn(warnings)
        fit_result = trained.fit
        return {"metrics": scores, "primary_metric": self.primary_metric, "training": fit_result.summary(),
                "budget": {"optimizer_steps": fit_result.steps, "examples_seen": fit_result.examples_seen,
                           "trainable_parameters": fit_result.trainable_parameters,
                           "train_seconds": fit_result.train_seconds,
                           "validation_seconds": fit_result.validation_seconds},
                "reference_scores": references, "warnings": warnings, "run_settings": trained.settings}

    # ------------------------------------------------------------------ everything
    def method(self, name: str) -> MethodConfig:
        for method in self.config.methods:
            if method.name == name:
                return method
        raise ConfigError(f"no method named {name!r} in the config; it has: "
                          f"{', '.join(m.name for m in self.config.methods)}")

    def evaluate_saved(self, method_name: str, language: str, seed: int, on: str) -> dict[str, float]:
        """Test metrics of a saved stage-3 adapter, on its own language or another one."""
        method = self.method(method_name)
        head = self.head
        if method.spec.trained:
            _, selection = self.train_config(method)
            method = method.at(selection["chosen"] if selection else None)
            folder = self.adapter_dir(method, language, seed)
            if not folder.is_dir():
                raise ConfigError(f"no saved adapter in {folder}: run `flare train` for it first")
            model = stages.load_stage3(method.method, self.config, method.adapter(self.config.adapter), head,
                                       self.stage1(seed), folder)
        else:
            model = stages.load_stage1_model(head, self.stage1(seed))
        encoder = self._encoder_source(on) if method.spec.source == "encoder" else None
        test = self.load(on, "test")
        features = self._features(test, method.method, encoder, f"{on}/test", model)
        model = model.to(self.accelerator.device)
        return self.score(predict(model, head, features, self.config.train.eval_batch_size, head.pad_id,
                                  self.accelerator), test, method.method)

    def run(self, method: str | None = None, language: str | None = None, seed: int | None = None) -> list[Path]:
        """Every (method, language, seed) run of the config, or those selected."""
        if self.accelerator.is_main_process:
            save_config(self.config, self.output_dir / "config.yaml")
        methods = [self.method(method)] if method else self.config.methods
        languages = [language] if language else self.config.languages
        for name in languages:  # a test set that cannot be read fails before any training
            self.task.load(name, "test", self.data_root.path)
        self.stage1(seed)  # one seed selected: only its stage-1 model (tuning builds its own when missing)
        seeds = [seed] if seed is not None else self.config.seeds
        from flare.pipeline.tune import tune, tune_free

        # the methods with a search grid and runs to do: their settings are chosen on validation first;
        # a method whose last trials another process trains waits until the other methods' runs are done
        # (also a method whose finals are all on disk: a finished final its new choice differs from runs again)
        held = tune_free(self, methods)
        written = self._finals([m for m in methods if m not in held], languages, seeds)
        if held:
            tune(self, held)
            written += self._finals(held, languages, seeds)
        return written

    def _finals(self, methods: list[MethodConfig], languages: list[str], seeds: list[int]) -> list[Path]:
        """The final runs of `methods` not on disk and not held by another process; the files written."""
        written = []
        for language in languages:
            for method in methods:
                for seed in seeds:
                    with self.run_lock(self.run_name(method, language, seed), wait=False) as ours:
                        if ours:
                            written += self._final(method, language, seed)
                        else:
                            self.log(f"skip {method.name} {language} seed {seed}: another process is training it")
        return written

    def _final(self, method: MethodConfig, language: str, seed: int) -> list[Path]:
        """One final run (and its companion rows), unless its result exists; the files written."""
        path = self.result_path(method, language, seed)
        if path.is_file():
            from flare.pipeline.tune import check_same_settings, point_settings, stale_choice

            result = json.loads(path.read_text())
            selection = self.train_config(method)[1]
            stale = stale_choice(result, selection)
            if stale is None:
                check_same_settings(path, result, point_settings(self, method, selection and selection["chosen"],
                                                                 language, seed))
                self.log(f"skip {method.name} {language} seed {seed}: {path} exists")
                return self._missing_no_english(method, language, seed, path)
            self._supersede_final(method, language, seed, stale)
        written = []
        for each_path, result in self.run_with_companions(method, language, seed):
            if self.accelerator.is_main_process:
                write_json(each_path, result)
            test = result["metrics"]["test"]
            self.log(f"{result['method']:>15} {language:>5} seed {seed}: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in test.items()))
            written.append(each_path)
        if self.accelerator.is_main_process:
            remove_checkpoints(self.checkpoint_dir(self.run_name(method, language, seed)))
        self.accelerator.wait_for_everyone()
        return written

    def _supersede_final(self, method: MethodConfig, language: str, seed: int, why: str) -> None:
        """A finished final trained at a grid point its method no longer chooses (`stale_choice`: a
        grid widened after it ran): it and its companion row move to superseded/, and it runs again."""
        runs = [(method.name, language, seed)]
        if method.spec.no_english_row:
            runs.append((method.name + NO_ENGLISH, language, seed))
        if self.accelerator.is_main_process:
            target = self._move_to_superseded(runs, self.run_name(method, language, seed).replace("/", "-"))
            self._warn([f"{method.name} {language} seed {seed}: {why}; its result moved to "
                        f"{os.path.relpath(target, self.output_dir)}, and it runs again"])
        self.accelerator.wait_for_everyone()

    def _missing_no_english(self, method: MethodConfig, language: str, seed: int, trained_path: Path) -> list[Path]:
        """A finished FLARE run without its no-English row (an older experiment): scored from the saved
        adapter, when there is one."""
        path = self.result_path(method.name + NO_ENGLISH, language, seed)
        if not method.spec.no_english_row or not self.config.no_english_rows or path.is_file():
            return []
        folder = self.adapter_dir(method, language, seed)
        if not folder.is_dir():
            self.log(f"no {path.parent.parent.name} row for {language} seed {seed}: no saved adapter in {folder}")
            return []
        trained = json.loads(trained_path.read_text())
        chosen = (trained.get("selection") or {}).get("chosen")
        train_cfg, method = method.train_config(self.config.train, chosen), method.at(chosen)
        model = stages.load_stage3(method.method, self.config, method.adapter(self.config.adapter), self.head,
                                   self.stage1(seed), folder).to(self.accelerator.device)
        valid = self.load(language, "validation", train_cfg.max_eval_examples, seed)
        _, result = self._no_english(method, language, seed, model, self.load(language, "test"), valid, trained)
        if self.accelerator.is_main_process:
            write_json(path, result)
        self.accelerator.wait_for_everyone()
        return [path]

