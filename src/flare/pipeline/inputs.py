"""What an experiment reads: its config, task data and model head, each run's examples with their
English side (the human translation, or stage 2's machine translation, cached and scored), and
the model features built from them. `flare.pipeline.runner.Experiment` builds on it with the
training stages."""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import torch

from flare.environment import git_state
from flare.errors import ConfigError, DataError
from flare.heads import BaseHead, create_head, model_load_options
from flare.methods import get_method
from flare.pipeline.config import ExperimentConfig
from flare.pipeline.data import build_features
from flare.pipeline.sanity import reference_scores
from flare.pipeline.training import make_accelerator
from flare.pretrained.resolve import resolve_model
from flare.tasks import get_task
from flare.tasks.data_root import find_data_root


class ExperimentInputs:
    """The data side of an experiment (see the module docstring); `Experiment` adds the stages."""

    def __init__(self, config: ExperimentConfig, log=print):
        self.config = config
        self.log = log
        git_state()  # read once, now: result files record the code this process started with
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
            self._head = create_head(self.task, self.resolved.path_or_id, self.config.train.max_length,
                                     self.config.text_prefix, self.config.trust_remote_code,
                                     self.config.qa, revision=self.config.revision)
            self._head.load_options = model_load_options(self.config.trust_remote_code, self.config.dtype,
                                                         self.config.quantization, log=self.log)
            if self.config.revision:  # a hub id's branch, tag or commit (the tokenizer got it above)
                self._head.load_options["revision"] = self.config.revision
        return self._head

    @property
    def english_side(self) -> str:
        settings = self.config.translation
        if settings.model is None:
            if not any(get_method(m.method).reads_english for m in self.config.methods):
                return "none (no method reads an English partner)"
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
            if stats.translated and self.accelerator.is_main_process:
                self._write_translation_cost(stats, seconds)
        return list(self._quality.values())

    def _write_translation_cost(self, stats, seconds: float) -> None:
        """translations/cost.json: what the last `flare translate` that translated anything cost (wall
        seconds from start to end, model load included; texts from the cache are counted, not timed),
        so that the cost of MT sits in a file beside its quality (a run that found everything in the
        cache leaves the file alone)."""
        from flare.environment import finished_at, package_versions
        from flare.results.schema import write_json

        write_json(self.output_dir / "translations" / "cost.json", {
            "model": self.config.translation.model, "mode": self.config.translation.mode,
            "languages": list(self.config.languages), "texts_translated": stats.translated,
            "texts_from_cache": stats.cached, "model_calls": stats.batches, "seconds": seconds,
            "texts_per_second": stats.translated / seconds, "threads": torch.get_num_threads(),
            "device": str(self.accelerator.device), "versions": package_versions(), "git": git_state(),
            "finished": finished_at(),
        })

    def references(self, examples, method: str = "") -> list:
        """Gold values for the metric. Translate-test on QA answers in English: its prediction is
        scored against the English partner's answer (a target-language gold string cannot be
        compared with an English one)."""
        if method and get_method(method).scored_on_english(self.task.kind):
            examples = [e.english for e in examples]
        return self.head.references(examples)

    def score(self, predictions, examples, method: str = "") -> dict[str, float]:
        return self.task.metric(predictions, self.references(examples, method))

    @property
    def primary_metric(self) -> str:
        return self.task.primary_metric  # the task says (flare.tasks.base)

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

    def _features(self, examples, method: str, encoder, where: str, model=None) -> list[dict]:
        features = build_features(examples, self.head, method, where)
        train = self.config.train
        dtype = getattr(torch, train.source_cache_dtype)
        limit = train.source_cache_limit_mb * 2**20 if train.source_cache_limit_mb else None
        log = lambda message: self.log(f"{where}: {message}")  # noqa: E731
        if encoder is not None:  # FLARE-MT: the encoder runs once per example
            from flare.sources.encoder import add_encoder_states

            with self.accelerator.autocast():  # the config's precision, as every other forward pass
                add_encoder_states(features, examples, encoder, self.config.text_prefix, train.eval_batch_size,
                                   dtype, limit, log, cache_dir=train.source_cache_dir)
        spec = get_method(method)
        if spec.model == "flare" and spec.source == "english" and train.source_cache and model is not None:
            from flare.sources.cache import add_source_states

            with self.accelerator.autocast():  # as the live source pass, which runs inside the training step
                add_source_states(model.to(self.accelerator.device), features, self.head.pad_id,
                                  train.eval_batch_size, dtype, limit, log, cache_dir=train.source_cache_dir)
        return features

    def _encoder_source(self, language: str):
        from flare.sources.encoder import EncoderSource

        name = self.config.mt_encoder or self.resolved.path_or_id
        path = resolve_model(name).path_or_id
        return EncoderSource.from_pretrained(path, language=language, max_length=self.config.train.max_length,
                                             trust_remote_code=self.config.trust_remote_code)

    def _label_mismatch_record(self, language: str) -> dict:
        """User parallel data: how many target rows carried another label than their English row,
        per split, and what `on_label_mismatch` did with them (nothing for the built-in tasks)."""
        found = getattr(self.task, "label_mismatches", None) or {}
        per_split = {split: record.to_dict() for (code, split), record in found.items() if code == language}
        return {"label_mismatches": per_split} if per_split else {}
