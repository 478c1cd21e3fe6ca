"""Generative QA with decoders (``DecoderGenerativeQA``).

The prompt ``Context: {c}\\nQuestion: {q}\\nAnswer:``, then `` {answer}`` and the end token;
training is the language-model loss on the answer tokens; the prediction is greedy generation cut
at the end token or the first line break.  Over-long prompts lose the end of the context, never
the question or the cue; an example whose every gold answer lies in the lost part is flagged
(``answer_cut``), and the pipeline reports how many there are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from flare.heads.base import CausalLMHead
from flare.heads.qa import QAHead
from flare.tasks.examples import QAExample

logger = logging.getLogger(__name__)

QA_PROMPT = "Context: {context}\nQuestion: {question}\nAnswer:"
FUSION_BLOCK = "English context: {context}\nEnglish question: {question}\n"  # decoders, input-level fusion


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


def answer_kept(example: QAExample, context: str) -> bool:
    """Whether some gold answer of `example` lies whole inside `context`, a prefix of its context
    (an unanswered example counts as kept)."""
    return not example.answers or any(a.start + len(a.text) <= len(context) for a in example.answers)


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

    def fitted_context(self, example: QAExample) -> str:
        """The longest prefix of the example's context whose prompt fits max_length tokens."""
        return fit_context(self.tokenizer, lambda c: self.render(example.question, c), example.context,
                           self.max_length)

    def prompt_ids(self, example: QAExample, paired: QAExample | None = None, context: str | None = None) -> list[int]:
        text = self.render(example.question, self.fitted_context(example) if context is None else context)
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
        context = self.fitted_context(example)
        prompt = self.prompt_ids(example, example.english if side == "both" else None, context)
        answer = self.answer_ids(example)
        feature = {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}
        if not answer_kept(example, context):  # counted and reported by build_features
            feature["answer_cut"] = True
        return [feature]

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
