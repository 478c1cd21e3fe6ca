"""What the QA heads share (QAHead: a fast tokenizer, the settings, the gold answers as
references) and the text helpers both families use."""

from __future__ import annotations

from collections.abc import Sequence

from flare.errors import ConfigError
from flare.heads.base import BaseHead
from flare.heads.settings import QASettings
from flare.tasks.examples import QAExample


def first_answer(example: QAExample) -> tuple[int, int] | None:
    """Character span [start, end) of the first gold answer, or None (no gold answers)."""
    if not example.answers:
        return None
    answer = example.answers[0]
    return answer.start, answer.end


def cut_to_tokens(tokenizer, text: str, n_tokens: int) -> str:
    """The longest prefix of `text` that tokenizes (without special tokens) to at most
    `n_tokens` tokens, cut at a token boundary."""
    if n_tokens <= 0:
        return ""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= n_tokens:
        return text
    return text[: offsets[n_tokens - 1][1]]


class QAHead(BaseHead):
    """Common parts of the QA heads."""

    task_kind = "qa"

    def __init__(self, model_path: str, max_length: int, text_prefix: str = "", trust_remote_code: bool = False,
                 settings: QASettings | None = None, *, revision: str | None = None):
        super().__init__(model_path, max_length, text_prefix, trust_remote_code, revision=revision)
        self.settings = settings or QASettings()
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(f"extractive QA needs a fast tokenizer (character offsets); {model_path} has "
                              f"only a slow one ({type(self.tokenizer).__name__})")

    def references(self, examples: Sequence[QAExample]) -> list[tuple[str, ...]]:
        return [e.answer_texts for e in examples]
