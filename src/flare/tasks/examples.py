"""The examples every task loader returns: one data model for all tasks.

Two frozen dataclasses, both hashable and comparable by value:

``ClassificationExample``
    ``id``       string id, unique within one (task, language, split); the English partner of a
                 target example has the same id.
    ``texts``    the target-language text fields, in the task's field order:
                 NusaX ``(text,)``, XNLI ``(premise, hypothesis)``, user data: the configured
                 text columns.  Texts are kept verbatim (no stripping, no normalisation).
    ``label``    index into the task's ``label_names``.
    ``english``  the English partner's text fields (same length and order as ``texts``), or
                 ``None`` when there is none (English examples themselves, or data without a
                 parallel English side).

``QAExample`` (extractive QA, SQuAD 1.1 style)
    ``id``, ``question``, ``context``
    ``answers``  a tuple of ``Answer(text, start)``; ``start`` is the 0-based offset of
                 ``text`` in ``context`` counted in Python characters (Unicode code points), so
                 ``context[start:start + len(text)] == text`` always holds (loaders check it).
                 Non-empty, except where a QA task was built with ``allow_unanswered=True``
                 for a file whose gold answers are blanked: then ``()`` (predict only; such
                 examples cannot be trained on or scored).
    ``english``  the English partner ``QAExample`` (same id; its own ``english`` is ``None``) or
                 ``None`` (TyDiQA target languages, English examples themselves).

The pipeline builds model inputs from these; no task applies a prompt template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Union


class Answer(NamedTuple):
    """One gold answer span: the answer text and its character offset in the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        """Offset one past the last character of the answer."""
        return self.start + len(self.text)


@dataclass(frozen=True)
class ClassificationExample:
    id: str
    texts: tuple[str, ...]
    label: int
    english: tuple[str, ...] | None = None

    @property
    def text(self) -> str:
        """The first (for single-field tasks: the only) text field."""
        return self.texts[0]


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    english: QAExample | None = None

    @property
    def answer_texts(self) -> tuple[str, ...]:
        return tuple(a.text for a in self.answers)


Example = Union[ClassificationExample, QAExample]
