"""The QA heads' settings (one definition; the experiment config's ``qa:`` section is this type)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class QASettings:
    """Extractive QA settings (tasks tydiqa, xquad); see docs/pipeline.md."""

    doc_stride: int | None = None  # encoders: tokens shared by neighbouring windows; None: max_length // 4
    max_answer_length: int = 30  # encoders: longest predicted span, in tokens
    n_best: int = 20  # encoders: start and end candidates per window
    max_new_tokens: int = 32  # decoders: longest generated answer
