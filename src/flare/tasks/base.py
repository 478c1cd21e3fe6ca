"""The task interface the pipeline consumes, and the shared parts of its implementations.

A task (``flare.tasks.get_task(name)``) has:

``name``              registry name ("nusax", "xnli", "tydiqa", "xquad", "parallel")
``kind``              "classification" or "qa"
``label_names``       classification: label index -> name (e.g. ``("negative", "neutral",
                      "positive")``); QA: ``()``
``languages``         the language codes the task can load (ISO 639-1 or 639-3, as the task's
                      own table says; the English side is included)
``english_language``  the code of the English side (the source language of FLARE; stage-1 data)
``splits(language)``  the splits that exist for that language (a subset of train/validation/test)
``load(language, split, data_root=None) -> list[Example]``
                      the examples of one split, in file order; ``data_root`` is the folder that
                      holds the task folders (a Path, str or ``DataRoot``); ``None`` looks it up
                      with :func:`flare.tasks.data_root.find_data_root`.  Target-language examples
                      carry their English partner in ``example.english`` where the data has one.
``metric(predictions, references) -> dict[str, float]``
                      classification: predictions are label indices; references are label
                      indices or the examples; returns ``{"accuracy", "macro_f1"}``.
                      QA: predictions are answer strings; references are the examples or, per
                      question, the gold answer texts; returns ``{"exact_match", "f1"}``.
                      All scores in [0, 100] (see :mod:`flare.tasks.metrics`).
``primary_metric``    the score that selects a model and heads a report ("f1" for QA, else
                      "accuracy" unless the task says otherwise, e.g. NusaX "macro_f1")

What the rest of flare reads from a task class (everything about a task lives in its module):

``options``           the option names ``get_task(name, options)`` accepts (keyword arguments
                      of the constructor); :meth:`BaseTask.from_options` checks them
``prompt``            the decoders' prompt template of a classification task ({0}, {1}: the
                      text fields); None: the fields one per line, then "Label:"
``source``            a :class:`~flare.tasks.fetch.TaskSource` (where ``flare data fetch``
                      downloads it from), or None (not fetchable); with it ``fetch_files(codes)``
                      and ``fetch_layout(fetcher, codes, folder)`` say what a fetch writes

Languages may also be given by the task's folder / file name where it differs from the code
(NusaX "indonesian" -> "ind"); case is ignored.  An unknown language raises ConfigError listing
the valid codes; an unknown split raises ConfigError listing the valid splits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from flare.errors import ConfigError
from flare.tasks import metrics
from flare.tasks.data_root import DataRoot, find_data_root
from flare.tasks.examples import ClassificationExample, Example, QAExample
from flare.tasks.splits import SPLITS

if TYPE_CHECKING:
    from flare.tasks.fetch import Fetcher, TaskSource

Kind = Literal["classification", "qa"]


@runtime_checkable
class Task(Protocol):
    name: str
    kind: Kind
    label_names: tuple[str, ...]
    languages: tuple[str, ...]
    english_language: str

    def splits(self, language: str) -> tuple[str, ...]: ...

    def load(self, language: str, split: str, data_root: str | os.PathLike | DataRoot | None = None) -> list[Example]: ...

    def metric(self, predictions: Sequence, references: Sequence) -> dict[str, float]: ...


class BaseTask:
    """Shared behaviour: language and split checks, data-root lookup, the metric by kind."""

    name: str = ""
    kind: Kind = "classification"
    label_names: tuple[str, ...] = ()
    english_language: str = "en"
    folder: str = ""  # sub-folder of the data root
    #: language code -> name used in the data layout (folder or file name); identity if absent
    layout_names: Mapping[str, str] = {}
    #: extra accepted spellings -> code (besides the layout names)
    aliases: Mapping[str, str] = {}

    languages: tuple[str, ...] = ()
    #: the option names get_task accepts (constructor keyword arguments)
    options: tuple[str, ...] = ()
    #: decoders' prompt template ({0}, {1}: the text fields); None: the generic one
    prompt: str | None = None
    #: where `flare data fetch` downloads the task from; None: not fetchable
    source: TaskSource | None = None

    @classmethod
    def from_options(cls, config: Mapping[str, Any] | None = None) -> BaseTask:
        """The task built from its options (``get_task(name, config)``), unknown ones refused."""
        options = dict(config or {})
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            raise ConfigError(
                f"task {cls.name} has no option {unknown[0]!r}; "
                + (f"valid options: {', '.join(sorted(cls.options))}" if cls.options else "it takes no options")
            )
        return cls(**options)

    @property
    def primary_metric(self) -> str:
        """The score that selects a model and heads a report."""
        return "f1" if self.kind == "qa" else "accuracy"

    # -- languages and splits ------------------------------------------------------------------
    def resolve_language(self, language: str) -> str:
        """The task's code for ``language`` (a code or a layout/alias name, any case)."""
        if not isinstance(language, str):
            raise ConfigError(f"language must be a string, got {language!r}")
        key = language.strip().lower()
        lookup = {code.lower(): code for code in self.languages}
        lookup.update({name.lower(): code for code, name in self.layout_names.items()})
        lookup.update({alias.lower(): code for alias, code in self.aliases.items()})
        if key not in lookup:
            names = ", ".join(
                f"{code} ({self.layout_names[code]})" if self.layout_names.get(code, code) != code else code
                for code in self.languages
            )
            raise ConfigError(f"unknown language {language!r} for task {self.name}; valid codes: {names}")
        return lookup[key]

    def splits(self, language: str) -> tuple[str, ...]:
        self.resolve_language(language)
        return SPLITS

    def check_split(self, language: str, split: str) -> str:
        code = self.resolve_language(language)
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        available = self.splits(code)
        if split not in available:
            raise ConfigError(
                f"task {self.name} has no {split!r} split for language {code!r} "
                f"(available: {', '.join(available) or 'none'})"
                + self._missing_split_hint(code, split)
            )
        return code

    def _missing_split_hint(self, language: str, split: str) -> str:
        return ""

    def layout_name(self, code: str) -> str:
        return self.layout_names.get(code, code)

    # -- data root ------------------------------------------------------------------------------
    def root(self, data_root: str | os.PathLike | DataRoot | None) -> Path:
        """The data root as a Path; looked up (it must hold this task's folder) when None."""
        if data_root is None:
            return find_data_root(needs=self.folder or None).path
        if isinstance(data_root, DataRoot):
            return data_root.path
        return Path(data_root)

    # -- fetching (tasks with a source) --------------------------------------------------------
    def fetch_files(self, codes: Sequence[str]) -> list[str]:
        """The files (relative to the task folder) that a fetch of the languages `codes` writes."""
        raise ConfigError(f"task {self.name!r} cannot be fetched")

    def fetch_layout(self, fetch: Fetcher, codes: Sequence[str], out: Path) -> list[str]:
        """Download the languages `codes` with `fetch` and lay them out in `out` (the task folder
        being built); the files written, relative to `out`."""
        raise ConfigError(f"task {self.name!r} cannot be fetched")

    # -- metric ----------------------------------------------------------------------------------
    def metric(self, predictions: Sequence, references: Sequence) -> dict[str, float]:
        if self.kind == "classification":
            return classification_metric(predictions, references, len(self.label_names))
        return qa_metric(predictions, references)

    def __repr__(self) -> str:
        return f"<task {self.name} ({self.kind}): {', '.join(self.languages)}>"


def classification_metric(predictions: Sequence, references: Sequence, num_labels: int) -> dict[str, float]:
    """Accuracy and macro-F1 (0-100) after checking that every value is a valid label index."""
    gold = [r.label if isinstance(r, ClassificationExample) else r for r in references]
    for what, values in (("prediction", predictions), ("reference", gold)):
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_labels:
                raise ValueError(
                    f"{what} {i} is {value!r}, not a label index in 0..{num_labels - 1}"
                    + (" (map unparseable model outputs to a label before scoring)" if what == "prediction" else "")
                )
    return metrics.classification_scores(list(predictions), gold)


def qa_metric(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    """Exact match and F1 (0-100), max over each question's gold answers."""
    gold = [r.answer_texts if isinstance(r, QAExample) else r for r in references]
    return metrics.qa_scores(list(predictions), gold)
