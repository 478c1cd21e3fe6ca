"""Heads: how each model family reads a task and answers it (classification, extractive QA).

One factory, :func:`create_head` (the head for a task and a model), and :func:`model_kind`
(encoder, decoder or encoder-decoder, from a model's config).  A head turns texts into token
ids (``encode`` / ``example_features``), builds the model (``load_model``), gives the model
inputs of the loss (``model_inputs``), predicts per feature (``predict``) and turns those
outputs into one prediction per example (``finalize``); ``references`` are what the task metric
compares them with.  What a task contributes (its kind, label names, decoder prompt) comes from
the task (:mod:`flare.tasks`).

Modules
    base            BaseHead, CausalLMHead (what decoder heads share), model_load_options
    classification  ClassificationHead: EncoderClassifier, DecoderLabelWords, Seq2SeqLabelWords
    qa              QAHead (what the QA heads share) and its text helpers
    span_qa         EncoderSpanQA: answer spans over context windows
    generative_qa   DecoderGenerativeQA: a prompt, then the generated answer
    settings        QASettings (the experiment config's ``qa:`` section)

The names below load torch and transformers when first used (PEP 562), so importing
``flare.heads.settings`` (the config does) stays light.
"""

from __future__ import annotations

from flare.errors import ConfigError
from flare.heads.settings import QASettings
from flare.lazy import lazy_exports

_EXPORTS = {
    "BaseHead": "flare.heads.base",
    "CausalLMHead": "flare.heads.base",
    "Encoded": "flare.heads.base",
    "model_load_options": "flare.heads.base",
    "ClassificationHead": "flare.heads.classification",
    "EncoderClassifier": "flare.heads.classification",
    "DecoderLabelWords": "flare.heads.classification",
    "Seq2SeqLabelWords": "flare.heads.classification",
    "QAHead": "flare.heads.qa",
    "EncoderSpanQA": "flare.heads.span_qa",
    "DecoderGenerativeQA": "flare.heads.generative_qa",
}

__all__ = sorted([*_EXPORTS, "QASettings", "create_head", "model_kind"])


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def model_kind(config) -> str:
    """The family of a transformers model config: "encoder", "decoder" or "encoder-decoder"."""
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    architectures = " ".join(getattr(config, "architectures", None) or [])
    if "CausalLM" in architectures or getattr(config, "is_decoder", False):
        return "decoder"
    if config.model_type in ("llama", "gemma", "gemma2", "gemma3", "gemma3_text", "qwen2", "qwen3", "mistral",
                             "phi3", "gpt2", "gpt_neox", "olmo2"):
        return "decoder"
    return "encoder"


def create_head(task, model_path: str, max_length: int, text_prefix: str = "", trust_remote_code: bool = False,
                qa_settings: QASettings | None = None, revision: str | None = None):
    """The head for `task` (classification or extractive QA) and the model's family."""
    if task.kind == "classification":
        from flare.heads.classification import ClassificationHead

        return ClassificationHead.create(model_path, task.name, task.label_names, max_length, text_prefix,
                                         trust_remote_code, revision=revision, prompt=getattr(task, "prompt", None))
    from transformers import AutoConfig

    from flare.heads.generative_qa import DecoderGenerativeQA
    from flare.heads.span_qa import EncoderSpanQA

    kind = model_kind(AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code, revision=revision))
    if kind == "encoder-decoder":
        raise ConfigError(f"extractive QA ({task.name}) runs with encoders and decoders; encoder-decoder "
                          f"models ({model_path}) are not supported for QA yet")
    cls = EncoderSpanQA if kind == "encoder" else DecoderGenerativeQA
    return cls(model_path, max_length, text_prefix, trust_remote_code, qa_settings, revision=revision)
