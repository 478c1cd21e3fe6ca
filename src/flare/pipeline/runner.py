"""The whole experiment: stage 1 once, then every (method, language, seed) run, each written
to its own JSON file; finished runs are skipped, so a stopped experiment picks up where it was."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from accelerate.utils import set_seed

from flare.pipeline import stages
from flare.errors import ConfigError, DataError
from flare.pipeline.checkpoint import remove_checkpoints
from flare.pipeline.config import TRAINED_METHODS, ExperimentConfig, MethodConfig, TrainConfig, save_config
from flare.pipeline.data import build_features
from flare.environment import environment_record
from flare.io import write_text_atomic
from flare.pipeline.heads import BaseHead, create_head, model_load_options
from flare.pipeline.sanity import learning_warnings, reference_scores
from flare.pipeline.training import FitResult, fit, make_accelerator, predict
from flare.pretrained.resolve import resolve_model
from flare.tasks import get_task
from flare.tasks.data_root import find_data_root

RESULT_SCHEMA = 1
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


HYPERPARAMETERS = ("learning_rate", "epochs", "batch_size", "gradient_accumulation_steps", "max_grad_norm",
                   "warmup_ratio", "weight_decay", "patience", "eval_every", "max_train_examples")


def hyperparameters(train: TrainConfig) -> dict:
    """The training settings a budget table shows."""
    return {key: getattr(train, key) for key in HYPERPARAMETERS}


def _selection_summary(experiment, selection: dict | None) -> dict | None:
    if selection is None:
        return None
    return {"chosen": selection["chosen"], "validation_mean": selection["chosen_mean"],
            "metric": selection["metric"], "languages": selection["languages"], "seeds": selection["seeds"],
            "file": str(Path(selection["path"]).relative_to(experiment.output_dir))}


def write_json(path: Path, data: dict) -> None:
    """Atomic: a crash leaves the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class Experiment:
    def __init__(self, config: ExperimentConfig, log=print):
        self.config = config
        self.log = log
        if config.threads:
            torch.set_num_threads(config.threads)
        self.output_dir = Path(config.output_dir)
        self.task = get_task(config.task, config.task_options or None)
        self.data_root = find_data_root(config.data_dir, needs=getattr(self.task, "folder", None) or None)
        self.log(f"data: {self.data_root}")
        self.resolved = resolve_model(config.model)
        self.log(f"model: {self.resolved}")
        for language in config.languages:
            self.task.splits(language)  # an unknown language fails here, listing the valid ones
        self.english = self.task.english_language
        self.accelerator = make_accelerator(config.device, config.precision)
        self._head = None
        self._translator = None
        self._quality: dict[tuple[str, str], dict] = {}  # (language, split) -> MT quality row

    # ------------------------------------------------------------------ shared pieces
    @property
    def head(self) -> BaseHead:
        if self._head is None:
            from flare.pipeline.qa import QASettings

            self._head = create_head(self.task, self.resolved.path_or_id, self.config.train.max_length,
                                     self.config.text_prefix, self.config.trust_remote_code,
                                     QASettings(**dataclasses.asdict(self.config.qa)), revision=self.config.revision)
            self._head.load_options = model_load_options(self.config.trust_remote_code, self.config.dtype,
                                                         self.config.quantization, log=self.log)
            if self.config.revision:  # a hub id's branch, tag or commit (the tokenizer got it above)
                self._head.load_options["revision"] = self.config.revision
        return self._head

    @property
    def english_side(self) -> str:
        settings = self.config.translation
        if settings.model is None:
            return "human translation"
        if settings.mode == "paper":
            return f"machine translation ({settings.model})"
        train = "target text machine-translated from the English" if settings.mt_train else "human"
        return f"machine translation of the target text ({settings.model}) in validation and test; train: {train}"

    def mt_plan(self, language: str, split: str) -> str | None:
        """What stage 2 machine-translates in this split: None (nothing: human data), "english" (the
        English side is MT of the target text) or "target" (the target text is MT of the English)."""
        settings = self.config.translation
        if settings.model is None or language == self.english:
            return None
        if settings.mode == "paper":
            return "english" if split == "test" else "target"
        if split not in self.task.splits(language):
            raise ConfigError(f"translation.mode mt-english keeps the human {language} text, but {self.task.name} "
                              f"has no {language} {split} split (it has: {', '.join(self.task.splits(language))}); "
                              "use mode: paper (the target training data is then MT of the English)")
        if split == "train":
            return "target" if settings.mt_train else None
        return "english"

    def load(self, language: str, split: str, limit: int | None = None, seed: int = 0) -> list:
        """A split of a target language, each example with its English side: the human
        translation, or with translation.model set, machine translation (stage 2; see mt_plan):
        mode paper: the test set into English, the English train/validation sets into the target
        language; mode mt-english: the target validation and test sets into English (and with
        mt_train the English partners of the training set into the target)."""
        plan = self.mt_plan(language, split)
        from_english = plan == "target" and self.config.translation.mode == "paper"
        examples = self.task.load(self.english if from_english else language, split, self.data_root.path)
        if limit is not None and limit < len(examples):
            examples = random.Random(seed).sample(examples, limit)
        if plan is None:
            return examples
        if self.task.kind == "qa":
            return self._translate_qa(examples, language, split, plan, from_english)
        from flare.translation import translate_records

        if plan == "english":
            english, _ = translate_records(examples, ["texts"], self.translator, language, self.english)
            self._score_mt(language, split, self.english, [e.texts for e in english], [t.english for t in examples])
            return [dataclasses.replace(t, english=e.texts) for t, e in zip(examples, english)]
        sources = examples if from_english else self._english_partners(examples, language, split)
        target, _ = translate_records(sources, ["texts"], self.translator, self.english, language)
        references = self._human_target(examples, language, split) if from_english else examples
        self._score_mt(language, split, language, [t.texts for t in target],
                       [r.texts if r is not None else None for r in references])
        return [dataclasses.replace(t, english=e.texts) for t, e in zip(target, sources)]

    def _english_partners(self, examples: list, language: str, split: str) -> list:
        """The human English partners as examples of their own (mt-english with mt_train)."""
        missing = [e.id for e in examples if e.english is None]
        if missing:
            raise DataError(f"{language}/{split}: {len(missing)} of {len(examples)} examples have no English "
                            f"partner (e.g. {missing[0]!r}), so their target text cannot be replaced by MT of it",
                            hint="translation.mt_train needs a parallel task (NusaX, XNLI, XQuAD); use mode: paper")
        if self.task.kind == "qa":
            return [e.english for e in examples]
        return [dataclasses.replace(e, texts=e.english, english=None) for e in examples]

    def _human_target(self, english: list, language: str, split: str) -> list:
        """For scoring MT into the target: the human target example of each English one (same id),
        or None where the task has none (TyDiQA, or a split the language does not have)."""
        try:
            human = {e.id: e for e in self.task.load(language, split, self.data_root.path)}
        except (DataError, ConfigError):
            return [None] * len(english)
        return [human.get(e.id) for e in english]

    def _score_mt(self, language: str, split: str, tgt: str, hypotheses: list, references: list) -> None:
        """chrF and BLEU of the MT against the human translation where there is one (quality.json)."""
        pairs = [(h, r) for hs, rs in zip(hypotheses, references) if hs is not None and rs is not None
                 for h, r in zip(hs, rs) if r.strip()]
        if not pairs:
            return
        from flare.translation.quality import QualityTable, quality_path, score_translations

        src = self.english if tgt == language else language
        scores = score_translations([h for h, _ in pairs], [r for _, r in pairs])
        row = {"model": self.config.translation.model, "language": language, "split": split, "src": src,
               "tgt": tgt, **scores, "mode": self.config.translation.mode}
        self._quality[(language, split)] = row
        if self.accelerator.is_main_process:
            QualityTable(quality_path(self.output_dir)).add(row)

    def translation_record(self, language: str) -> dict:
        """For the result file: which side of each split was MT, by which model, and its chrF."""
        settings = self.config.translation
        kind = settings.kind
        if self._translator is not None and hasattr(self._translator, "family"):  # as detected
            kind = "causal-lm" if self._translator.family == "causal-lm" else "seq2seq"
        splits = [split for split in ("train", "validation", "test") if split in self.task.splits(language)]
        record: dict = {"model": settings.model, "kind": kind, "mode": settings.mode,
                        "machine": {split: self.mt_plan(language, split) for split in splits}}
        if settings.model is not None:
            record["chrf"] = {split: row["chrf"] for (lang, split), row in self._quality.items() if lang == language}
        return record

    def _translate_qa(self, examples: list, language: str, split: str, plan: str, from_english: bool) -> list:
        """Stage 2 for extractive QA: the answer is carried through translation with quote markers
        (flare.translation.qa_projection); examples whose answer cannot be found again are dropped,
        in the test set too (as the authors did), so every method sees the same test questions.
        plan "english": target -> English (the English partner's answer is the projected one);
        plan "target": English -> target (the English partner is the original)."""
        from flare.translation import translate_qa_records

        if plan == "english":
            self._require_answers(examples, f"{language}/{split}")
            english, report = translate_qa_records(examples, self.translator, language, self.english)
            kept = [examples[i] for i in report.kept_indices]
            result = [dataclasses.replace(t, english=dataclasses.replace(e, english=None))
                      for t, e in zip(kept, english)]
            self._score_mt(language, split, self.english, [(e.question, e.context) for e in english],
                           [(t.english.question, t.english.context) if t.english else None for t in kept])
        else:
            sources = examples if from_english else self._english_partners(examples, language, split)
            target, report = translate_qa_records(sources, self.translator, self.english, language)
            kept = [sources[i] for i in report.kept_indices]
            result = [dataclasses.replace(t, english=e) for t, e in zip(target, kept)]
            human = self._human_target(kept, language, split) if from_english else \
                [examples[i] for i in report.kept_indices]
            self._score_mt(language, split, language, [(t.question, t.context) for t in target],
                           [(h.question, h.context) if h is not None else None for h in human])
        if len(result) < len(examples):
            self.log(f"{language}/{split}: {len(examples) - len(result)} of {len(examples)} questions dropped "
                     f"(answer not found after translation): {report.summary()}")
        return result

    @staticmethod
    def _require_answers(examples: list, where: str) -> None:
        missing = [e.id for e in examples if not getattr(e, "answers", True)]
        if missing:
            raise DataError(f"{where}: {len(missing)} of {len(examples)} questions have no gold answers "
                            f"(e.g. {missing[0]!r}), so the split cannot be scored",
                            hint="this copy of the data has blanked answers (some older XQuAD / TyDiQA copies do): "
                                 "use one with answers, e.g. `flare data fetch xquad` (docs/data.md)")

    @property
    def translator(self):
        if self._translator is None:
            from flare.translation.causal import make_translator, translator_kind

            settings = self.config.translation
            path = resolve_model(settings.model).path_or_id
            kind = translator_kind(path, settings.kind)
            self._translator = make_translator(
                path, kind, batch_size=settings.batch_size, num_beams=settings.num_beams,
                max_input_length=settings.max_prompt_length if kind == "causal-lm" else settings.max_length,
                max_new_tokens=settings.max_length, model_name=settings.model,
                cache_dir=self.output_dir / "translations", examples=self._prompt_examples,
                shots=settings.shots, template=settings.prompt)
        return self._translator

    def _prompt_examples(self, src: str, tgt: str) -> list[tuple[str, str]]:
        """Few-shot pairs for a causal-LM translator: the human pairs of the task's validation split
        of that language pair (never test). src and tgt are canonical codes (languages.py)."""
        from flare.languages import get_language, is_known

        codes = {(get_language(name).code if is_known(name) else name): name for name in self.config.languages}
        english_code = get_language(self.english).code if is_known(self.english) else self.english
        target = codes.get(tgt if src == english_code else src)
        if target is None or target == self.english or "validation" not in self.task.splits(target):
            return []
        pairs = []
        for example in self.task.load(target, "validation", self.data_root.path):
            if example.english is None:
                continue
            if self.task.kind == "qa":
                pairs.append((example.question, example.english.question))
            else:
                pairs.extend(zip(example.texts, example.english))
        return [(e, t) for t, e in pairs] if src == english_code else pairs

    def translate_all(self) -> list[dict]:
        """Stage 2 on its own: every split of every language that has something to translate, cached
        on disk for later runs; returns the quality rows measured (also in translations/quality.json)."""
        started = time.perf_counter()
        for language in self.config.languages:
            for split in ("train", "validation", "test"):
                if self.mt_plan(language, split) is not None:
                    self.load(language, split)
        if self._translator is not None:
            stats, seconds = self._translator.total_stats, time.perf_counter() - started
            rate = f" ({stats.translated / seconds:.2f} texts/s)" if stats.translated else ""
            self.log(f"stage 2: {stats.summary()}; {seconds:.0f} s{rate}")
        return list(self._quality.values())

    def references(self, examples, method: str = "") -> list:
        """Gold values for the metric. Translate-test on QA answers in English: its prediction is
        scored against the English partner's answer (a target-language gold string cannot be
        compared with an English one)."""
        if method == "translate-test" and self.task.kind == "qa":
            examples = [e.english for e in examples]
        return self.head.references(examples)

    def score(self, predictions, examples, method: str = "") -> dict[str, float]:
        return self.task.metric(predictions, self.references(examples, method))

    @property
    def primary_metric(self) -> str:
        if self.task.kind == "qa":
            return "f1"
        return "macro_f1" if self.task.name == "nusax" else "accuracy"

    def checkpoint_dir(self, name: str) -> Path:
        return self.output_dir / "checkpoints" / name

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
        """The shared stage-1 model (no `stage1_seeds`); with `stage1_seeds`, see `stage1_dir_for`."""
        return self.output_dir / "stage1"

    def stage1_dir_for(self, seed: int | None = None) -> Path:
        """The stage-1 model a stage-3 seed builds on: `stage1/` (one shared model, `stage1_seed`), or
        with `stage1_seeds` its own `stage1/seed-<s>/` (seeds[i] pairs with stage1_seeds[i])."""
        stage1_seed = self.config.stage1_seed_for(seed) if seed is not None else None
        return self.stage1_dir if stage1_seed is None else self.stage1_dir / f"seed-{stage1_seed}"

    def stage1(self, seed: int | None = None) -> Path:
        """Plain LoRA (and the task head) on English task data, trained once and reused: the shared
        model, or with `stage1_seeds` the one of stage-3 seed `seed` (None: every seed's)."""
        if seed is None and self.config.stage1_seeds is not None:
            for each in self.config.seeds:
                self.stage1(each)
            return self.stage1_dir
        stage1_seed = self.config.stage1_seed_for(seed) if seed is not None else None
        folder = self.stage1_dir_for(seed)
        marker = folder / "stage1.json"
        if marker.is_file():
            self.log(f"stage 1: reusing {folder}")
            return folder
        cfg = self.config
        stage1_seed = cfg.stage1_seed if stage1_seed is None else stage1_seed
        name = "stage1" if folder == self.stage1_dir else f"stage1/seed-{stage1_seed}"
        train = self.load(self.english, "train", cfg.stage1.max_train_examples, stage1_seed)
        valid = self.load(self.english, "validation", cfg.stage1.max_eval_examples, stage1_seed)
        test = self._stage1_test(stage1_seed)
        head = self.head
        set_seed(stage1_seed)  # the new head and LoRA weights are drawn from the seeded generator
        model = stages.new_stage1_model(cfg, head)
        features = {name: build_features(ex, head, "zero-shot") for name, ex in
                    (("train", train), ("validation", valid), ("test", test))}
        result = fit(model, head, features["train"], features["validation"], cfg.stage1, stage1_seed,
                     lambda p: self.score(p, valid)[self.primary_metric], self.accelerator,
                     desc=f"stage 1 (en, seed {stage1_seed})", trackers=self._trackers(name),
                     checkpoint_dir=self.checkpoint_dir(name), resume=cfg.resume, log=self.log)
        model = self.accelerator.unwrap_model(model)
        test_scores = None
        if test:
            test_scores = self.score(predict(model, head, features["test"], cfg.stage1.eval_batch_size,
                                             head.pad_id, self.accelerator), test)
        valid_predictions = predict(model, head, features["validation"], cfg.stage1.eval_batch_size, head.pad_id,
                                    self.accelerator)
        references = self.reference_scores(self.english, {"validation": valid, "test": test})
        warnings = learning_warnings("stage 1 (English)", {"validation": valid_predictions},
                                     {"validation": self.score(valid_predictions, valid)}, references,
                                     self.primary_metric)
        self._warn(warnings)
        if self.accelerator.is_main_process:  # with several processes, one writes
            model.save_pretrained(str(folder))
            write_json(marker, {"language": self.english, "seed": stage1_seed, "best_epoch": result.best_epoch,
                                "history": result.history, "test": test_scores,
                                "train_seconds": result.train_seconds, "training": result.summary(),
                                "reference_scores": references, "warnings": warnings})
            remove_checkpoints(self.checkpoint_dir(name))
        self.accelerator.wait_for_everyone()
        if test_scores is not None:
            self.log(f"stage 1: English test {self.primary_metric} = {test_scores[self.primary_metric]:.2f}")
        return folder

    def _warn(self, warnings: list[str]) -> None:
        for warning in warnings:
            self.log(f"WARNING: {warning}")

    def reference_scores(self, language: str, splits: dict[str, list]) -> dict | None:
        """Majority-class (the most frequent label of the language's whole training split) and chance
        scores of classification splits; None for QA."""
        if self.task.kind != "classification":
            return None
        train, source = None, language
        for source in dict.fromkeys((language, self.english)):  # no target training split: English's majority
            try:
                train = self.task.load(source, "train", self.data_root.path)
                break
            except DataError:
                continue
        if not train:
            return None
        scores = reference_scores(self.task.metric, self.references(train),
                                  {split: self.references(examples) for split, examples in splits.items() if examples},
                                  len(self.task.label_names))
        return {**scores, "majority_of": f"{source}/train"}

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

    def adapter_dir(self, method: MethodConfig, language: str, seed: int) -> Path:
        return self.output_dir / "adapters" / method.name / language / f"seed-{seed}"

    def train_config(self, method: MethodConfig) -> tuple[TrainConfig, dict | None]:
        """The training settings of a method's final runs: the config's (and the method's own
        `train:`), with the grid point chosen on validation when the method is tuned (`search:`;
        the tuning runs first if its selection is missing); and that selection (None: not tuned)."""
        from flare.pipeline.tune import selection_for

        selection = selection_for(self, method)
        return method.train_config(self.config.train, selection["chosen"] if selection else None), selection

    def _train(self, method: MethodConfig, language: str, seed: int, train_cfg: TrainConfig, run_name: str,
               test: list | None = None) -> _Trained:
        """The stage-3 model of one (method, language, seed), trained with `train_cfg` on the
        language's training split, the best evaluation on its validation split restored. `test`
        (None in tuning, which never reads it) gets its features before training."""
        cfg = self.config
        name = method.method
        encoder = self._encoder_source(language) if name == "flare-mt" else None
        set_seed(seed)
        model = stages.stage3_model(name, cfg, method.adapter(cfg.adapter), self.head, self.stage1(seed),
                                    encoder.hidden_size if encoder else None, seed)
        test_features = self._features(test, name, encoder, f"{language}/test", model) if test is not None else None
        if name not in TRAINED_METHODS:
            return _Trained(model.to(self.accelerator.device), test_features=test_features)
        train = self.load(language, "train", train_cfg.max_train_examples, seed)
        valid = self.load(language, "validation", train_cfg.max_eval_examples, seed)
        valid_features = self._features(valid, name, encoder, f"{language}/validation", model)
        train_features = self._features(train, name, encoder, f"{language}/train", model)
        fit_result = fit(model, self.head, train_features, valid_features, train_cfg, seed,
                         lambda p: self.score(p, valid, name)[self.primary_metric], self.accelerator,
                         desc=run_name.replace("/", " "), trackers=self._trackers(run_name),
                         checkpoint_dir=self.checkpoint_dir(run_name), resume=cfg.resume, log=self.log)
        return _Trained(self.accelerator.unwrap_model(model), fit_result, train, valid, valid_features, test_features)

    def _label_mismatch_record(self, language: str) -> dict:
        """User parallel data: how many target rows carried another label than their English row,
        per split, and what `on_label_mismatch` did with them (nothing for the built-in tasks)."""
        found = getattr(self.task, "label_mismatches", None) or {}
        per_split = {split: record.to_dict() for (code, split), record in found.items() if code == language}
        return {"label_mismatches": per_split} if per_split else {}

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
            if name == "translate-test":
                self._require_answers([e.english for e in test], f"{language}/test (English side)")
        started = time.perf_counter()
        trained = self._train(method, language, seed, train_cfg, f"{method.name}/{language}/seed-{seed}", test)
        model, fit_result = trained.model, trained.fit
        predictions = {}
        valid_scores = None
        if fit_result is not None:
            if hasattr(model, "save_pretrained") and self.accelerator.is_main_process:
                self._describe_for_card(model, method, language)
                model.save_pretrained(self.adapter_dir(method, language, seed))
            predictions["validation"] = self._predict(model, trained.valid_features)
            valid_scores = self.score(predictions["validation"], trained.valid, name)
        eval_started = time.perf_counter()
        predictions["test"] = self._predict(model, trained.test_features)
        eval_seconds = time.perf_counter() - eval_started
        references = self.reference_scores(language, {"validation": trained.valid or [], "test": test})
        result = self._result(method.name, name, language, seed, test, predictions, valid_scores, references,
                              fit_result, train_cfg, selection, eval_seconds, time.perf_counter() - started)
        results = [(self.result_path(method, language, seed), result)]
        if name == "flare" and cfg.no_english_rows:
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
                  "predictions": {"ids": [e.id for e in test], "predicted": predictions["test"],
                                  "gold": self.references(test)}}
        result["budget"] = {**(trained_result.get("budget") or {}), "eval_seconds": eval_seconds}
        result["reference_scores"] = trained_result.get("reference_scores") or self.reference_scores(
            language, {"validation": valid or [], "test": test})
        result["warnings"] = learning_warnings(f"{name} {language} seed {seed}", predictions, result["metrics"],
                                               result["reference_scores"], self.primary_metric)
        self._warn(result["warnings"])
        return self.result_path(name, language, seed), result

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
            "selection": _selection_summary(self, selection),
            "reference_scores": references,
            "warnings": warnings,
            "stage1": {"dir": str(self.stage1_dir_for(seed).relative_to(self.output_dir)),
                       "seed": cfg.stage1_seed_for(seed) or cfg.stage1_seed},
            "english_side": self.english_side,
            "translation": self.translation_record(language),
            **self._label_mismatch_record(language),
            "predictions": {"ids": [e.id for e in test], "predicted": predictions["test"],
                            "gold": self.references(test, name)},
            "config": cfg.to_dict(),
            "environment": environment_record(cfg.model, str(self.resolved.path_or_id), cfg.revision,
                                              str(self.accelerator.device)),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def run_trial(self, method: MethodConfig, language: str, seed: int, train_cfg: TrainConfig,
                  run_name: str) -> dict:
        """One tuning run: train with `train_cfg`, score the restored best weights on validation.
        The test split is never read."""
        trained = self._train(method, language, seed, train_cfg, run_name)
        predictions = self._predict(trained.model, trained.valid_features)
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
                "reference_scores": references, "warnings": warnings}

    def _features(self, examples, method: str, encoder, where: str, model=None) -> list[dict]:
        features = build_features(examples, self.head, method, where)
        train = self.config.train
        dtype = getattr(torch, train.source_cache_dtype)
        limit = train.source_cache_limit_mb * 2**20 if train.source_cache_limit_mb else None
        log = lambda message: self.log(f"{where}: {message}")  # noqa: E731
        if encoder is not None:  # FLARE-MT: the encoder runs once per example
            from flare.sources.encoder import add_encoder_states

            add_encoder_states(features, examples, encoder, self.config.text_prefix, train.eval_batch_size,
                               dtype, limit, log, cache_dir=train.source_cache_dir)
        if method == "flare" and train.source_cache and model is not None:
            from flare.sources.cache import add_source_states

            add_source_states(model.to(self.accelerator.device), features, self.head.pad_id,
                              train.eval_batch_size, dtype, limit, log, cache_dir=train.source_cache_dir)
        return features

    def _encoder_source(self, language: str):
        from flare.sources.encoder import EncoderSource

        name = self.config.mt_encoder or self.resolved.path_or_id
        path = resolve_model(name).path_or_id
        return EncoderSource.from_pretrained(path, language=language, max_length=self.config.train.max_length,
                                             trust_remote_code=self.config.trust_remote_code)

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
        if method.method in TRAINED_METHODS:
            _, selection = self.train_config(method)
            method = method.at(selection["chosen"] if selection else None)
            folder = self.adapter_dir(method, language, seed)
            if not folder.is_dir():
                raise ConfigError(f"no saved adapter in {folder}: run `flare train` for it first")
            model = stages.load_stage3(method.method, self.config, method.adapter(self.config.adapter), head,
                                       self.stage1(seed), folder)
        else:
            model = stages.load_stage1_model(head, self.stage1(seed))
        encoder = self._encoder_source(on) if method.method == "flare-mt" else None
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
        self.stage1()
        seeds = [seed] if seed is not None else self.config.seeds
        from flare.pipeline.tune import tune

        # the methods with a search grid and runs to do: their settings are chosen on validation first
        tune(self, [m for m in methods if any(not self.result_path(m, lang, s).is_file()
                                              for lang in languages for s in seeds)])
        written = []
        for language in languages:
            for method in methods:
                for seed in seeds:
                    path = self.result_path(method, language, seed)
                    if path.is_file():
                        self.log(f"skip {method.name} {language} seed {seed}: {path} exists")
                        written += self._missing_no_english(method, language, seed, path)
                        continue
                    for each_path, result in self.run_with_companions(method, language, seed):
                        if self.accelerator.is_main_process:
                            write_json(each_path, result)
                        test = result["metrics"]["test"]
                        self.log(f"{result['method']:>15} {language:>5} seed {seed}: "
                                 + ", ".join(f"{k} {v:.2f}" for k, v in test.items()))
                        written.append(each_path)
                    if self.accelerator.is_main_process:
                        remove_checkpoints(self.checkpoint_dir(f"{method.name}/{language}/seed-{seed}"))
                    self.accelerator.wait_for_everyone()
        return written

    def _missing_no_english(self, method: MethodConfig, language: str, seed: int, trained_path: Path) -> list[Path]:
        """A finished FLARE run without its no-English row (an older experiment): scored from the saved
        adapter, when there is one."""
        path = self.result_path(method.name + NO_ENGLISH, language, seed)
        if method.method != "flare" or not self.config.no_english_rows or path.is_file():
            return []
        folder = self.adapter_dir(method, language, seed)
        if not folder.is_dir():
            self.log(f"no {path.parent.parent.name} row for {language} seed {seed}: no saved adapter in {folder}")
            return []
        trained = json.loads(trained_path.read_text())
        chosen = (trained.get("selection") or {}).get("chosen")
        train_cfg, method = method.train_config(self.config.train, chosen), method.at(chosen)
        model = stages.load_stage3("flare", self.config, method.adapter(self.config.adapter), self.head,
                                   self.stage1(seed), folder).to(self.accelerator.device)
        valid = self.load(language, "validation", train_cfg.max_eval_examples, seed)
        _, result = self._no_english(method, language, seed, model, self.load(language, "test"), valid, trained)
        if self.accelerator.is_main_process:
            write_json(path, result)
        self.accelerator.wait_for_everyone()
        return [path]

