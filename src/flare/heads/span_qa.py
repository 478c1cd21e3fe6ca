"""Extractive QA with encoders (``EncoderSpanQA``, transformers' *ForQuestionAnswering).

The (question, context) pair is one input, the context cut into overlapping windows
(``max_length``, ``doc_stride``); training labels are the answer's start and end token of each
window (the first position where the answer is not wholly inside the window); the prediction is
the best valid span (start <= end, at most ``max_answer_length`` tokens, inside the context) over
all windows of a question, mapped back to a substring of the context.  docs/pipeline.md has the
choices (FLARE's source for windows, input-level fusion, translate-test scoring).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from transformers import AutoModelForQuestionAnswering

from flare.errors import ConfigError
from flare.heads.base import has_module
from flare.heads.qa import QAHead, cut_to_tokens, first_answer
from flare.tasks.examples import QAExample

logger = logging.getLogger(__name__)


def answer_token_span(offsets: Sequence, sequence_ids: Sequence, start_char: int, end_char: int,
                      context_sequence: int = 1) -> tuple[int, int]:
    """Start and end token of the character span [start_char, end_char) in one window, or
    (0, 0) (the first position, [CLS] / <s>) when the span is not wholly inside the window's
    context part."""
    context = [i for i, s in enumerate(sequence_ids) if s == context_sequence]
    if not context:
        return 0, 0
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start = first
    while start + 1 <= last and offsets[start + 1][0] <= start_char:
        start += 1
    end = last
    while end - 1 >= start and offsets[end - 1][1] >= end_char:
        end -= 1
    return start, end


def span_candidates(start_logits: torch.Tensor, end_logits: torch.Tensor, offsets: Sequence,
                    max_answer_length: int = 30, n_best: int = 20) -> list[tuple[float, int, int]]:
    """Valid spans of one window as (score, start_char, end_char), best first.

    ``offsets[i]`` is the (start, end) character span of token i in the context, or None for a
    token outside the context (question, special tokens, padding, the English block of input-level
    fusion): such tokens never start or end an answer. Valid: start <= end, at most
    ``max_answer_length`` tokens. Score: start logit + end logit (comparable across windows)."""
    length = min(len(offsets), start_logits.shape[-1])
    allowed = torch.tensor([offsets[i] is not None for i in range(length)], dtype=torch.bool)
    if not bool(allowed.any()):
        return []
    start = start_logits[:length].float().masked_fill(~allowed, -math.inf)
    end = end_logits[:length].float().masked_fill(~allowed, -math.inf)
    k = min(n_best, int(allowed.sum()))
    starts = start.topk(k).indices.tolist()
    ends = end.topk(k).indices.tolist()
    candidates = []
    for s in starts:
        for e in ends:
            if s <= e < s + max_answer_length:
                candidates.append((float(start[s] + end[e]), offsets[s][0], offsets[e][1]))
    candidates.sort(key=lambda c: -c[0])
    return candidates


def best_answer(context: str, per_window: Sequence[Sequence[tuple[float, int, int]]]) -> str:
    """The best-scoring span over all windows of one question, as a substring of its context
    ("" when no window has a valid span)."""
    best = None
    for candidates in per_window:
        if candidates and (best is None or candidates[0][0] > best[0]):
            best = candidates[0]
    return "" if best is None else context[best[1]:best[2]]


class EncoderSpanQA(QAHead):
    kind = "encoder"
    lora_targets = None  # the family's query/value projections
    trainable_heads: list[str] = ["qa_outputs"]

    def load_model(self):
        model, info = AutoModelForQuestionAnswering.from_pretrained(
            self.model_path, num_labels=2, output_loading_info=True, **self.load_options)
        if any("qa_outputs" in key for key in info["missing_keys"]):
            logger.info("%s has no pretrained QA head: qa_outputs starts random and trains", self.model_path)
        self.trainable_heads = [h for h in ("qa_outputs",) if has_module(model, h)]
        return model

    @property
    def doc_stride(self) -> int:
        return self.settings.doc_stride if self.settings.doc_stride is not None else max(1, self.max_length // 4)

    def _first_text(self, question: str, budget: int) -> str:
        return self.text_prefix + cut_to_tokens(self.tokenizer, question, budget)

    def windows(self, first: str, context: str, max_length: int, span: tuple[int, int] | None,
                overflow: bool = True) -> list[dict]:
        """Tokenize (first, context) into windows over the context; each window's input ids,
        the character offsets of its context tokens (None elsewhere) and, with a gold `span`,
        its start/end labels."""
        special = self.tokenizer.num_special_tokens_to_add(pair=True)
        first_length = len(self.tokenizer(first, add_special_tokens=False)["input_ids"])
        room = max_length - special - first_length
        if room < 2:
            raise ConfigError(f"max_length={max_length} leaves no room for the context after the question "
                              f"({first_length} tokens): raise train.max_length")
        stride = min(self.doc_stride, room // 2)
        encoded = self.tokenizer(first, context, truncation="only_second", max_length=max_length, stride=stride,
                                 return_overflowing_tokens=overflow, return_offsets_mapping=True)
        ids = encoded["input_ids"]
        if ids and isinstance(ids[0], int):  # no overflow: one window, not a list of windows
            rows, offsets_rows = [ids], [encoded["offset_mapping"]]
        else:
            rows, offsets_rows = ids, encoded["offset_mapping"]
        windows = []
        for w, (row, row_offsets) in enumerate(zip(rows, offsets_rows)):
            sequence_ids = encoded.sequence_ids(w)
            offsets = [tuple(o) if s == 1 else None for o, s in zip(row_offsets, sequence_ids)]
            window = {"input_ids": list(row), "offsets": offsets}
            if span is not None:
                window["start_positions"], window["end_positions"] = answer_token_span(
                    row_offsets, sequence_ids, span[0], span[1])
            windows.append(window)
        return windows

    def example_features(self, example: QAExample, side: str = "target") -> list[dict]:
        """side: "target" (the example), "english" (its English partner: translate-test) or "both"
        (input-level fusion: the English question and context, cut to max_length tokens, before the
        target question; the target context is windowed as usual, so the answer and its offsets
        lie in the target context)."""
        if side == "english":
            example = example.english
        if side == "both":
            english = example.english
            sep = f" {self.tokenizer.sep_token} " if self.tokenizer.sep_token else " "
            block = cut_to_tokens(self.tokenizer, english.question + " " + english.context, self.max_length - 2)
            first = self.text_prefix + block + sep + cut_to_tokens(self.tokenizer, example.question,
                                                                   self.max_length // 2)
            max_length = 2 * self.max_length
        else:
            first = self._first_text(example.question, self.max_length // 2)
            max_length = self.max_length
        windows = self.windows(first, example.context, max_length, first_answer(example))
        for window in windows:
            window["context"] = example.context
        return windows

    def source_ids(self, english: QAExample) -> list[int]:
        """FLARE's / X-Mixup's source: the English pair tokenized as the input is, the first window
        only (the same source for every window of the target)."""
        return self.source_features(english)["source_input_ids"]

    def source_features(self, english: QAExample) -> dict:
        window = self.windows(self._first_text(english.question, self.max_length // 2), english.context,
                              self.max_length, first_answer(english), overflow=False)[0]
        feature = {"source_input_ids": window["input_ids"]}
        if "start_positions" in window:  # X-Mixup: the source pass's own span loss
            feature["source_start_positions"] = window["start_positions"]
            feature["source_end_positions"] = window["end_positions"]
        return feature

    def model_inputs(self, batch: dict) -> dict:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        for key in ("start_positions", "end_positions", "source_start_positions", "source_end_positions"):
            if key in batch:
                inputs[key] = batch[key]
        return inputs

    @torch.no_grad()
    def predict(self, model, batch, **source) -> list:
        """Per window: the (start, end) logits of its real tokens, on the CPU."""
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **source)
        lengths = batch["attention_mask"].sum(-1).tolist()
        start, end = out.start_logits.float().cpu(), out.end_logits.float().cpu()
        return [(start[i, :n], end[i, :n]) for i, n in enumerate(lengths)]

    def finalize(self, features: Sequence[dict], outputs: Sequence) -> list[str]:
        """The best span over the windows of each example, in example order."""
        by_example: dict[int, list] = {}
        contexts: dict[int, str] = {}
        for feature, (start, end) in zip(features, outputs):
            index = feature["example_index"]
            contexts[index] = feature["context"]
            by_example.setdefault(index, []).append(span_candidates(
                start, end, feature["offsets"], self.settings.max_answer_length, self.settings.n_best))
        return [best_answer(contexts[i], by_example[i]) for i in sorted(by_example)]
