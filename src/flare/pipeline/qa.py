"""Extractive QA in the pipeline (TyDiQA-GoldP, XQuAD): how each model family reads a
(question, context) pair and answers it.

- Encoders (``EncoderSpanQA``, *ForQuestionAnswering): the pair is one input, the context cut into
  overlapping windows (``max_length``, ``doc_stride``); training labels are the answer's start and
  end token of each window (the first position where the answer is not wholly inside the window);
  the prediction is the best valid span (start <= end, at most ``max_answer_length`` tokens, inside
  the context) over all windows of a question, mapped back to a substring of the context.
- Decoders (``DecoderGenerativeQA``): the prompt ``Context: {c}\\nQuestion: {q}\\nAnswer:``, then
  `` {answer}`` and the end token; training is the language-model loss on the answer tokens; the
  prediction is greedy generation cut at the end token or the first line break. Over-long prompts
  lose the end of the context, never the question or the cue.

A head turns one example into features (``example_features``: one per window, or one), builds the
model inputs of the loss (``model_inputs``), predicts per feature (``predict``) and turns the
per-feature outputs into one answer string per example (``finalize``). docs/pipeline.md has the
choices (FLARE's source for windows, input-level fusion, translate-test scoring).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import AutoModelForQuestionAnswering

from flare.errors import ConfigError
from flare.pipeline.heads import BaseHead, CausalLMHead, _has_module
from flare.tasks.examples import QAExample

logger = logging.getLogger(__name__)

QA_PROMPT = "Context: {context}\nQuestion: {question}\nAnswer:"
FUSION_BLOCK = "English context: {context}\nEnglish question: {question}\n"  # decoders, input-level fusion


# ----------------------------------------------------------------------------- text helpers
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


def fit_context(tokenizer, render: Callable[[str], str], context: str, budget: int) -> str:
    """The longest prefix of `context` (cut at a token boundary) for which ``render(prefix)``
    tokenizes (special tokens included) to at most `budget` tokens; the rest of the prompt is
    never cut. A prompt that is over budget even with no context keeps an empty context."""
    if len(tokenizer(render(context))["input_ids"]) <= budget:
        return context
    fixed = len(tokenizer(render(""))["input_ids"])
    offsets = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    keep = min(len(offsets), budget - fixed)
    while keep > 0:
        cut = context[: offsets[keep - 1][1]]
        over = len(tokenizer(render(cut))["input_ids"]) - budget
        if over <= 0:
            return cut
        keep -= over  # tokens can merge across the cut: shrink by what is still over
    if fixed > budget:
        logger.warning("a QA prompt is over max_length (%d tokens) even without its context: the question "
                       "and cue are kept whole", fixed)
    return ""


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


def extract_generated_answer(token_ids: Sequence[int], tokenizer, stop_ids: Sequence[int]) -> str:
    """A generated answer: the new tokens up to the first end token, decoded, cut at the first
    line break, stripped."""
    stop = set(stop_ids)
    kept = []
    for token in token_ids:
        if int(token) in stop:
            break
        kept.append(int(token))
    text = tokenizer.decode(kept, skip_special_tokens=True)
    return text.split("\n", 1)[0].strip()


# ----------------------------------------------------------------------------- heads
@dataclass
class QASettings:
    doc_stride: int | None = None
    max_answer_length: int = 30
    n_best: int = 20
    max_new_tokens: int = 32


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


class EncoderSpanQA(QAHead):
    kind = "encoder"
    lora_targets = None  # the family's query/value projections
    trainable_heads: list[str] = ["qa_outputs"]

    def load_model(self):
        model, info = AutoModelForQuestionAnswering.from_pretrained(
            self.model_path, num_labels=2, output_loading_info=True, **self.load_options)
        if any("qa_outputs" in key for key in info["missing_keys"]):
            logger.info("%s has no pretrained QA head: qa_outputs starts random and trains", self.model_path)
        self.trainable_heads = [h for h in ("qa_outputs",) if _has_module(model, h)]
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


class DecoderGenerativeQA(CausalLMHead, QAHead):
    def load_model(self):
        model = super().load_model()
        eos = getattr(model.generation_config, "eos_token_id", None)
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self.stop_ids = sorted({self.tokenizer.eos_token_id, *eos} - {None})
        return model

    @property
    def stop_token_ids(self) -> list[int]:
        return getattr(self, "stop_ids", None) or [self.tokenizer.eos_token_id]

    def render(self, question: str, context: str) -> str:
        return self.text_prefix + QA_PROMPT.format(context=context, question=question)

    def prompt_text(self, example: QAExample) -> str:
        """The prompt, its context cut so that it fits max_length tokens."""
        context = fit_context(self.tokenizer, lambda c: self.render(example.question, c), example.context,
                              self.max_length)
        return self.render(example.question, context)

    def prompt_ids(self, example: QAExample, paired: QAExample | None = None) -> list[int]:
        text = self.prompt_text(example)
        if paired is not None:  # input-level fusion: the English block (max_length tokens) first
            block = lambda c: FUSION_BLOCK.format(context=c, question=paired.question)  # noqa: E731
            text = block(fit_context(self.tokenizer, block, paired.context, self.max_length)) + text
        return self.tokenizer(text)["input_ids"]

    def answer_ids(self, example: QAExample) -> list[int]:
        if not example.answers:
            return []
        ids = self.tokenizer(" " + example.answers[0].text, add_special_tokens=False)["input_ids"]
        return ids[: self.settings.max_new_tokens] + [self.tokenizer.eos_token_id]

    def example_features(self, example: QAExample, side: str = "target") -> list[dict]:
        if side == "english":
            example = example.english
        prompt = self.prompt_ids(example, example.english if side == "both" else None)
        answer = self.answer_ids(example)
        return [{"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}]

    def source_ids(self, english: QAExample) -> list[int]:
        """The English prompt without an answer (answer tokens fuse with nothing, in training as
        in generation)."""
        return self.prompt_ids(english)

    def source_features(self, english: QAExample) -> dict:
        return {"source_input_ids": self.source_ids(english)}

    def model_inputs(self, batch: dict) -> dict:
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["labels"]}

    @torch.no_grad()
    def predict(self, model, batch, **source) -> list[str]:
        """Greedy generation after each prompt (the positions whose labels are -100), left-padded."""
        real = batch["attention_mask"].bool()
        prompts = [ids[m][: int((lab[m] == -100).sum())] for ids, m, lab in
                   zip(batch["input_ids"], real, batch["labels"])]
        width = max(len(p) for p in prompts)
        device = batch["input_ids"].device
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = p
            mask[i, width - len(p):] = 1
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=self.settings.max_new_tokens,
                             do_sample=False, num_beams=1, pad_token_id=self.pad_id,
                             eos_token_id=self.stop_token_ids, **source)
        return [extract_generated_answer(row[width:].tolist(), self.tokenizer, self.stop_token_ids) for row in out]

    def finalize(self, features: Sequence[dict], outputs: Sequence) -> list[str]:
        return list(outputs)
