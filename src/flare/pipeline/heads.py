"""Moved to flare.heads (the factory, base and classification heads); this name stays for old imports."""

from flare.heads import create_head, model_kind
from flare.heads.base import (BaseHead, CausalLMHead, Encoded, has_module, model_load_options, prompt_lengths,
                              with_prompt_lengths)
from flare.heads.classification import (ClassificationHead, DecoderLabelWords, EncoderClassifier, Seq2SeqLabelWords,
                                        log_probs_at)


def __getattr__(name: str):
    """`PROMPTS` (older name): the decoder prompt of each registered task, now on the task."""
    if name == "PROMPTS":
        from flare.tasks.registry import TASKS

        return {key: cls.prompt for key, cls in TASKS.items() if cls.prompt is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_has_module, _with_prompt_lengths, _log_probs_at = has_module, with_prompt_lengths, log_probs_at

__all__ = ["BaseHead", "CausalLMHead", "ClassificationHead", "DecoderLabelWords", "Encoded", "EncoderClassifier",
           "Seq2SeqLabelWords", "create_head", "model_kind", "model_load_options", "prompt_lengths"]
