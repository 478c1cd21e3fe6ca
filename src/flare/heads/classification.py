"""How each model family does a classification task.

- Encoders (``EncoderClassifier``): a classification head over the sequence (transformers'
  *ForSequenceClassification); where the checkpoint has no pooler weights (multilingual-e5), the
  pooler trains with the head.
- Decoders (``DecoderLabelWords``): the task's prompt (``task.prompt``), then the label word;
  training is the language-model loss on the label word, prediction scores every label word's
  log-likelihood after the prompt.
- Encoder-decoders (``Seq2SeqLabelWords``): the encoder reads the prompt, the decoder produces
  the label word.
"""

from __future__ import annotations

import logging

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from flare.core.states import pad_sequences
from flare.heads import model_kind
from flare.heads.base import BaseHead, CausalLMHead, Encoded, has_module, with_prompt_lengths

logger = logging.getLogger(__name__)


def task_prompt(task_name: str) -> str | None:
    """The decoder prompt template of the registered task `task_name` (None: none, or no such task)."""
    from flare.tasks.registry import TASKS

    cls = TASKS.get(task_name)
    return getattr(cls, "prompt", None) if cls is not None else None


class ClassificationHead(BaseHead):
    """Common parts: the tokenizer, joining fields, the label set."""

    def __init__(self, model_path: str, task_name: str, label_names: tuple[str, ...], max_length: int,
                 text_prefix: str = "", trust_remote_code: bool = False, *, revision: str | None = None,
                 prompt: str | None = None):
        super().__init__(model_path, max_length, text_prefix, trust_remote_code, revision=revision)
        self.task_name = task_name
        self.label_names = label_names
        # decoders' prompt template: the task's own (`prompt`), else the registered task's of that name
        self.prompt = prompt if prompt is not None else task_prompt(task_name)

    @staticmethod
    def create(model_path: str, task_name: str, label_names, max_length: int, text_prefix: str = "",
               trust_remote_code: bool = False, *, revision: str | None = None,
               prompt: str | None = None) -> "ClassificationHead":
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code, revision=revision)
        kind = model_kind(config)
        cls = {"encoder": EncoderClassifier, "decoder": DecoderLabelWords,
               "encoder-decoder": Seq2SeqLabelWords}[kind]
        return cls(model_path, task_name, tuple(label_names), max_length, text_prefix, trust_remote_code,
                   revision=revision, prompt=prompt)


class EncoderClassifier(ClassificationHead):
    kind = "encoder"
    lora_targets = None  # the family's query/value projections

    def load_model(self):
        model, info = AutoModelForSequenceClassification.from_pretrained(
            self.model_path, num_labels=len(self.label_names), output_loading_info=True,
            **self.load_options)
        heads = ["classifier", "score"]
        if any(".pooler." in key or key.startswith("pooler.") for key in info["missing_keys"]):
            heads.append("pooler")  # no pretrained pooler (e5): train it with the classifier
            logger.info("%s has no pretrained pooler weights: the pooler trains with the classifier",
                        self.model_path)
        self.trainable_heads = [h for h in heads if has_module(model, h)]
        return model

    def encode(self, fields: tuple[str, ...], label: int, paired: tuple[str, ...] | None = None) -> Encoded:
        """One sequence from the fields (two fields: a sentence pair); `paired`: input-level
        fusion, the English text then the target text in one sequence of twice the length."""
        if paired is not None:
            texts, length = (self.text_prefix + " ".join(paired), " ".join(fields)), 2 * self.max_length
        elif len(fields) == 2:
            texts, length = (self.text_prefix + fields[0], fields[1]), self.max_length
        else:
            texts, length = (self.text_prefix + " ".join(fields),), self.max_length
        return Encoded(self.tokenizer(*texts, truncation=True, max_length=length)["input_ids"], label)

    def source_ids(self, fields: tuple[str, ...]) -> list[int]:
        return self.encode(fields, 0).input_ids

    def loss_and_predictions(self, model, batch, **source):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                    **source)
        return out.loss, out.logits.argmax(-1)

    @torch.no_grad()
    def predict(self, model, batch, **source) -> torch.Tensor:
        return self.loss_and_predictions(model, batch, **source)[1]

    @torch.no_grad()
    def label_scores(self, model, batch, **source) -> torch.Tensor:
        """Log-probability (B, labels) of each label (the classifier's log-softmax)."""
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **source)
        return torch.log_softmax(out.logits.float(), -1)


class DecoderLabelWords(CausalLMHead, ClassificationHead):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # " negative" etc.: the label word with its leading space, then end of sequence
        self.label_ids = [self.tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in self.label_names]

    def render(self, fields: tuple[str, ...]) -> str:
        if self.prompt is None:
            return self.text_prefix + "\n".join(fields) + "\nLabel:"
        return self.text_prefix + self.prompt.format(*fields)

    def prompt_ids(self, text: str, budget: int) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        if len(ids) > budget:  # cut the text from the left side of the cue: keep the cue
            ids = ids[:1] + ids[len(ids) - budget + 1:]
        return ids

    def encode(self, fields, label: int, paired=None) -> Encoded:
        text = self.render(fields) if paired is None else "English: " + "\n".join(paired) + "\n" + self.render(fields)
        answer = self.label_ids[label] + [self.tokenizer.eos_token_id]
        # the same prompt budget for every label: the prompt a model sees must not depend on the gold label
        longest_answer = max(len(word) for word in self.label_ids) + 1
        budget = (2 if paired else 1) * self.max_length - longest_answer
        prompt = self.prompt_ids(text, budget)
        return Encoded(prompt + answer, [-100] * len(prompt) + answer)

    def source_ids(self, fields) -> list[int]:
        """The English prompt, without an answer: answer tokens fuse with nothing, in training
        as in prediction."""
        return self.prompt_ids(self.render(fields), self.max_length)

    @torch.no_grad()
    def predict(self, model, batch, **source) -> torch.Tensor:
        return self.label_scores(model, batch, **source).argmax(1)

    @torch.no_grad()
    def label_scores(self, model, batch, **source) -> torch.Tensor:
        """Log-probability (B, labels) of every label word after the prompt (the positions where
        labels are -100). The LM
        head runs only at the positions that predict a label word's tokens: a full-vocabulary
        logit tensor for every position (262k entries per token for Gemma) would need gigabytes
        per batch. When every label word is one token, one pass over the prompts scores them all."""
        real = batch["attention_mask"].bool()
        prompts = [ids[m][: int((lab[m] == -100).sum())]
                   for ids, m, lab in zip(batch["input_ids"], real, batch["labels"])]
        last = torch.tensor([len(p) - 1 for p in prompts])[:, None]  # predicts a word's first token
        device = batch["input_ids"].device
        source = with_prompt_lengths(model, source, (last[:, 0] + 1).to(device))
        if all(len(word) == 1 for word in self.label_ids):
            ids, mask = pad_sequences(prompts, self.pad_id)
            logp = log_probs_at(model, ids.to(device), mask.to(device), last, **source)[:, 0]
            return logp[:, [word[0] for word in self.label_ids]]
        scores = []
        for word in self.label_ids:
            ids, mask = pad_sequences([torch.cat([p, torch.tensor(word)]) for p in prompts], self.pad_id)
            positions = last + torch.arange(len(word))
            logp = log_probs_at(model, ids.to(device), mask.to(device), positions, **source)
            scores.append(logp.gather(-1, torch.tensor(word).expand(len(prompts), -1)[..., None])[..., 0].sum(1))
        return torch.stack(scores, dim=1)


def log_probs_at(model, ids, mask, positions: torch.Tensor, **source) -> torch.Tensor:
    """Log-probabilities (B, K, vocab) of the next token at `positions` (B, K) of each row; with
    transformers' `logits_to_keep` the LM head runs at those positions only."""
    positions = positions.to(ids.device)
    try:
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=positions, **source).logits
    except TypeError:  # a model without logits_to_keep
        logits = model(input_ids=ids, attention_mask=mask, **source).logits
    if logits.shape[1] != positions.shape[1]:  # logits_to_keep unknown or ignored: all positions came back
        logits = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
    return torch.log_softmax(logits.float(), -1).cpu()


class Seq2SeqLabelWords(DecoderLabelWords):
    kind = "encoder-decoder"
    lora_targets = None
    loss = BaseHead.loss  # the labels are the decoder's, not positions of the input

    def load_model(self):
        self.trainable_heads = []
        return AutoModelForSeq2SeqLM.from_pretrained(self.model_path, **self.load_options)

    def encode(self, fields, label: int, paired=None) -> Encoded:
        text = self.render(fields) if paired is None else "English: " + "\n".join(paired) + "\n" + self.render(fields)
        ids = self.tokenizer(text, truncation=True, max_length=(2 if paired else 1) * self.max_length)["input_ids"]
        return Encoded(ids, self.label_ids[label] + [self.tokenizer.eos_token_id])

    def source_ids(self, fields) -> list[int]:
        return self.tokenizer(self.render(fields), truncation=True, max_length=self.max_length)["input_ids"]

    @torch.no_grad()
    def predict(self, model, batch, **source) -> torch.Tensor:
        return self.label_scores(model, batch, **source).argmax(1)

    @torch.no_grad()
    def label_scores(self, model, batch, **source) -> torch.Tensor:
        """Log-probability (B, labels) of every label word (and its end of sequence) as the answer."""
        scores = []
        for word in self.label_ids:
            target = torch.tensor(word + [self.tokenizer.eos_token_id]).repeat(len(batch["input_ids"]), 1)
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=target, **source)
            logp = torch.log_softmax(out.logits.float(), -1).gather(-1, target[..., None])[..., 0]
            scores.append(logp[:, :len(word)].sum(1))
        return torch.stack(scores, dim=1)
