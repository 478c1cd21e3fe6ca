"""FLARE-MT's source: an external encoder (a translation model's, or any encoder) run on the
target-language text itself. Its states go through FlareModel's trained projection.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer

from flare.translation.languages import model_code
from flare.translation.translator import detect_family


class EncoderSource:
    """Runs a frozen encoder on text, batched, without gradients.

    For translation models (NLLB, M2M100) the input is tagged with the language of the
    text (the target language), not English.
    """

    def __init__(self, encoder: torch.nn.Module, tokenizer, language: str | None = None, max_length: int = 128,
                 family: str | None = None):
        self.encoder = encoder.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.family = family or detect_family(tokenizer)
        self.language_code = None
        if language is not None and self.family in ("nllb", "m2m100"):
            self.language_code = model_code(language, self.family).code
            tokenizer.src_lang = self.language_code

    @classmethod
    def from_pretrained(cls, name_or_path: str, language: str | None = None, max_length: int = 128,
                        trust_remote_code: bool = False, **load_kwargs) -> "EncoderSource":
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        if getattr(config, "is_encoder_decoder", False):
            model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, trust_remote_code=trust_remote_code,
                                                          **load_kwargs)
            encoder = model.get_encoder()
        else:
            encoder = AutoModel.from_pretrained(name_or_path, trust_remote_code=trust_remote_code, **load_kwargs)
        return cls(encoder, tokenizer, language, max_length, detect_family(tokenizer, config))

    @property
    def hidden_size(self) -> int:
        config = self.encoder.config
        return getattr(config, "hidden_size", None) or config.d_model

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, T, d) and attention mask (B, T) for one batch of texts."""
        if self.language_code is not None:
            self.tokenizer.src_lang = self.language_code  # another user of the tokenizer may have changed it
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        states = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
        return states, batch["attention_mask"]
