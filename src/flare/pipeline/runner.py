"""The whole experiment: stage 1 once, then every (method, language, seed) run, each written
to its own JSON file; finished runs are skipped, so a stopped experiment picks up where it was."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from accelerate.utils import set_seed

from flare.pipeline import stages
from flare.errors import ConfigError, DataError
from flare.pipeline.checkpoint import remove_checkpoints
from flare.pipeline.config import TRAINED_METHODS, ExperimentConfig, MethodConfig, save_config
from flare.pipeline.data import build_features
from flare.pipeline.heads import BaseHead, create_head, model_load_options
from flare.pipeline.training import fit, make_accelerator, predict
from flare.pretrained.resolve import resolve_model
from flare.tasks import get_task
from flare.tasks.data_root import find_data_root

RESULT_SCHEMA = 1


def write_json(path: Path, data: dict) -> None:
    """Atomic: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


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

    # ------------------------------------------------------------------ shared pieces
    @property
    def head(self) -> BaseHead:
        if self._head is None:
            from flare.pipeline.qa import QASettings

            self._head = create_head(self.task, self.resolved.path_or_id, self.config.train.max_length,
                                     self.config.text_prefix, self.config.trust_remote_code,
                                     QASettings(**dataclasses.asdict(self.config.qa)))
            self._head.load_options = model_load_options(self.config.trust_remote_code, self.config.dtype,
                                                         self.config.quantization, log=self.log)
        return self._head

    @property
    def english_side(self) -> str:
        return "human translation" if self.config.translation.model is None else \
            f"machine translation ({self.config.translation.model})"

    def load(self, language: str, split: str, limit: int | None = None, seed: int = 0) -> list:
        """A split of a target language, each example with its English side: the human
        translation, or with translation.model set, machine translation (stage 2): the test set
        into English, the English train/validation sets into the target language."""
        machine = self.config.translation.model is not None and language != self.english
        base = self.english if machine and split != "test" else language
        examples = self.task.load(base, split, self.data_root.path)
        if limit is not None and limit < len(examples):
            examples = random.Random(seed).sample(examples, limit)
        if not machine:
            return examples
        if self.task.kind == "qa":
            return self._translate_qa(examples, language, split)
        from flare.translation import translate_records

        if split == "test":
            english, _ = translate_records(examples, ["texts"], self.translator, language, self.english)
            return [dataclasses.replace(t, english=e.texts) for t, e in zip(examples, english)]
        target, _ = translate_records(examples, ["texts"], self.translator, self.english, language)
        return [dataclasses.replace(t, english=e.texts) for t, e in zip(target, examples)]

    def _translate_qa(self, examples: list, language: str, split: str) -> list:
        """Stage 2 for extractive QA: the answer is carried through translation with quote markers
        (flare.translation.qa_projection); examples whose answer cannot be found again are dropped,
        in the test set too (as the authors did), so every method sees the same test questions.
        Test: target -> English (the English partner's answer is the projected one); train and
        validation: English -> target (the English partner is the original)."""
        from flare.translation import translate_qa_records

        if split == "test":
            self._require_answers(examples, f"{language}/test")
            english, report = translate_qa_records(examples, self.translator, language, self.english)
            kept = [examples[i] for i in report.kept_indices]
            result = [dataclasses.replace(t, english=dataclasses.replace(e, english=None))
                      for t, e in zip(kept, english)]
        else:
            target, report = translate_qa_records(examples, self.translator, self.english, language)
            kept = [examples[i] for i in report.kept_indices]
            result = [dataclasses.replace(t, english=e) for t, e in zip(target, kept)]
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
            from flare.translation import Translator

            settings = self.config.translation
            self._translator = Translator(resolve_model(settings.model).path_or_id, batch_size=settings.batch_size,
                                          num_beams=settings.num_beams, max_input_length=settings.max_length,
                                          max_new_tokens=settings.max_length, model_name=settings.model,
                                          cache_dir=self.output_dir / "translations")
        return self._translator

    def translate_all(self) -> None:
        """Stage 2 on its own: every split of every language, cached on disk for later runs."""
        for language in self.config.languages:
            for split in ("train", "validation", "test"):
                self.load(language, split)

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

    def _tensorboard_dir(self, name: str) -> Path | None:
        return self.output_dir / "tensorboard" / name if self.config.tensorboard else None

    # ------------------------------------------------------------------ stage 1
    @property
    def stage1_dir(self) -> Path:
        return self.output_dir / "stage1"

    def stage1(self) -> Path:
        """Plain LoRA (and the task head) on English task data, trained once and reused."""
        marker = self.stage1_dir / "stage1.json"
        if marker.is_file():
            self.log(f"stage 1: reusing {self.stage1_dir}")
            return self.stage1_dir
        cfg = self.config
        train = self.load(self.english, "train", cfg.stage1.max_train_examples, cfg.stage1_seed)
        valid = self.load(self.english, "validation", cfg.stage1.max_eval_examples, cfg.stage1_seed)
        test = self._stage1_test()
        head = self.head
        set_seed(cfg.stage1_seed)  # the new head and LoRA weights are drawn from the seeded generator
        model = stages.new_stage1_model(cfg, head)
        features = {name: build_features(ex, head, "zero-shot") for name, ex in
                    (("train", train), ("validation", valid), ("test", test))}
        result = fit(model, head, features["train"], features["validation"], cfg.stage1, cfg.stage1_seed,
                     lambda p: self.score(p, valid)[self.primary_metric], self.accelerator, desc="stage 1 (en)",
                     tensorboard_dir=self._tensorboard_dir("stage1"), checkpoint_dir=self.checkpoint_dir("stage1"),
                     resume=cfg.resume, log=self.log)
        model = self.accelerator.unwrap_model(model)
        test_scores = None
        if test:
            test_scores = self.score(predict(model, head, features["test"], cfg.stage1.eval_batch_size,
                                             head.pad_id, self.accelerator), test)
        if self.accelerator.is_main_process:  # with several processes, one writes
            model.save_pretrained(str(self.stage1_dir))
            write_json(marker, {"language": self.english, "best_epoch": result.best_epoch,
                                "history": result.history, "test": test_scores,
                                "train_seconds": result.train_seconds})
            remove_checkpoints(self.checkpoint_dir("stage1"))
        self.accelerator.wait_for_everyone()
        if test_scores is not None:
            self.log(f"stage 1: English test {self.primary_metric} = {test_scores[self.primary_metric]:.2f}")
        return self.stage1_dir

    def _stage1_test(self) -> list:
        """The English test set of stage 1; for QA without gold answers there (an older, blanked copy
        of TyDiQA's English dev file) stage 1 goes on without a test score."""
        try:
            test = self.load(self.english, "test", self.config.stage1.max_eval_examples, self.config.stage1_seed)
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
    def result_path(self, method: MethodConfig, language: str, seed: int) -> Path:
        return self.output_dir / "results" / method.name / language / f"seed-{seed}.json"

    def adapter_dir(self, method: MethodConfig, language: str, seed: int) -> Path:
        return self.output_dir / "adapters" / method.name / language / f"seed-{seed}"

    def run_one(self, method: MethodConfig, language: str, seed: int) -> dict:
        cfg = self.config
        head = self.head
        stage1_dir = self.stage1()
        name = method.method
        test = self.load(language, "test")
        if self.task.kind == "qa":
            self._require_answers(test, f"{language}/test")
            if name == "translate-test":
                self._require_answers([e.english for e in test], f"{language}/test (English side)")
        encoder = self._encoder_source(language) if name == "flare-mt" else None
        set_seed(seed)
        model = stages.stage3_model(name, cfg, method.adapter(cfg.adapter), head, stage1_dir,
                                    encoder.hidden_size if encoder else None, seed)
        test_features = self._features(test, name, encoder, f"{language}/test", model)
        fit_result, valid_scores = None, None
        started = time.perf_counter()
        if name in ("zero-shot", "translate-test"):
            model = model.to(self.accelerator.device)
        else:
            train = self.load(language, "train", cfg.train.max_train_examples, seed)
            valid = self.load(language, "validation", cfg.train.max_eval_examples, seed)
            valid_features = self._features(valid, name, encoder, f"{language}/validation", model)
            train_features = self._features(train, name, encoder, f"{language}/train", model)
            fit_result = fit(model, head, train_features, valid_features,
                             cfg.train, seed, lambda p: self.score(p, valid, name)[self.primary_metric],
                             self.accelerator, desc=f"{method.name} {language} seed {seed}",
                             tensorboard_dir=self._tensorboard_dir(f"{method.name}/{language}/seed-{seed}"),
                             checkpoint_dir=self.checkpoint_dir(f"{method.name}/{language}/seed-{seed}"),
                             resume=cfg.resume, log=self.log)
            model = self.accelerator.unwrap_model(model)
            if hasattr(model, "save_pretrained") and self.accelerator.is_main_process:
                model.save_pretrained(self.adapter_dir(method, language, seed))
            valid_scores = self.score(predict(model, head, valid_features, cfg.train.eval_batch_size, head.pad_id,
                                              self.accelerator), valid, name)
        eval_started = time.perf_counter()
        predictions = predict(model, head, test_features, cfg.train.eval_batch_size, head.pad_id, self.accelerator)
        eval_seconds = time.perf_counter() - eval_started
        result = {
            "schema": RESULT_SCHEMA, "task": cfg.task, "model": cfg.model, "method": method.name,
            "base_method": name, "language": language, "seed": seed,
            "metrics": {"test": self.score(predictions, test, name),
                        **({"validation": valid_scores} if valid_scores else {})},
            "primary_metric": self.primary_metric,
            "timings": {"train_seconds": fit_result.train_seconds if fit_result else 0.0,
                        "eval_seconds": eval_seconds, "total_seconds": time.perf_counter() - started},
            "training": {"best_epoch": fit_result.best_epoch, "history": fit_result.history} if fit_result else None,
            "english_side": self.english_side,
            "predictions": {"ids": [e.id for e in test], "predicted": predictions,
                            "gold": self.references(test, name)},
            "config": cfg.to_dict(),
            "environment": {"torch": torch.__version__, "python": platform.python_version(),
                            "device": str(self.accelerator.device)},
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return result

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
            folder = self.adapter_dir(method, language, seed)
            if not folder.is_dir():
                raise ConfigError(f"no saved adapter in {folder}: run `flare train` for it first")
            model = stages.load_stage3(method.method, self.config, method.adapter(self.config.adapter), head,
                                       self.stage1(), folder)
        else:
            model = stages.load_stage1_model(head, self.stage1())
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
        written = []
        for language in languages:
            for method in methods:
                for seed in seeds:
                    path = self.result_path(method, language, seed)
                    if path.is_file():
                        self.log(f"skip {method.name} {language} seed {seed}: {path} exists")
                        continue
                    result = self.run_one(method, language, seed)
                    if self.accelerator.is_main_process:
                        write_json(path, result)
                        remove_checkpoints(self.checkpoint_dir(f"{method.name}/{language}/seed-{seed}"))
                    self.accelerator.wait_for_everyone()
                    test = result["metrics"]["test"]
                    self.log(f"{method.name:>15} {language:>5} seed {seed}: "
                             + ", ".join(f"{k} {v:.2f}" for k, v in test.items()))
                    written.append(path)
        return written

