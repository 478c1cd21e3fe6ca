"""FLARE-MT's source: an external encoder (a translation model's, or any encoder) run on the
target-language text itself. Its states go through FlareModel's trained projection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer

from flare.errors import DataError
from flare.sources import store
from flare.languages import detect_family, model_code


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


def encoder_text(example) -> str:
    """The target text FLARE-MT's encoder reads: the text fields, or the question then the context."""
    if hasattr(example, "texts"):
        return " ".join(example.texts)
    return example.question + " " + example.context


FEATURE_KEY = "source_encoder_states"


def add_encoder_states(features: list[dict], examples: Sequence, encoder_source: EncoderSource,
                       text_prefix: str = "", batch_size: int = 32, dtype: torch.dtype = torch.float16,
                       limit_bytes: int | None = None, log: Callable[[str], None] = print,
                       cache_dir: str | Path | None = None) -> None:
    """FLARE-MT: the encoder's states of each target text, computed once (batched, by length) and
    kept in `dtype`; every feature (window) of an example gets that example's states.

    With `cache_dir` they are also kept on disk (:mod:`flare.sources.store`), keyed by the
    encoder's weights, its language tag, the dtype and every text's tokens (tokenizer, prefix and
    truncation included): later runs on the same texts read them back memory-mapped."""
    texts = [text_prefix + encoder_text(e) for e in examples]
    token_rows = encoder_source.tokenizer(texts, truncation=True, max_length=encoder_source.max_length)["input_ids"]
    entry_key = None
    if cache_dir is not None:
        device = next(encoder_source.encoder.parameters()).device
        fingerprint = store.Fingerprint("encoder-states", type(encoder_source.encoder).__name__,
                                        encoder_source.language_code, str(dtype), store.compute_precision(device))
        fingerprint.add_model(encoder_source.encoder)
        entry_key = fingerprint.add_token_rows(token_rows).key()
        entry = store.find(cache_dir, entry_key)
        if entry is not None:
            log(f"encoder-state cache: reusing {entry}")
            _attach([s[FEATURE_KEY] for s in store.read(entry, len(texts))], features)
            return
    size = sum(len(row) for row in token_rows) * encoder_source.hidden_size * (torch.finfo(dtype).bits // 8)
    log(f"encoder-state cache: {len(texts)} examples, about {size / 2**20:.0f} MiB ({dtype})")
    if limit_bytes is not None and size > limit_bytes:
        raise DataError(f"the encoder-state cache would take {size / 2**20:.0f} MiB, over the limit of "
                        f"{limit_bytes / 2**20:.0f} MiB", hint="raise train.source_cache_limit_mb")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    states_of: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    for start in tqdm(range(0, len(order), batch_size), desc="encoder states", leave=False):
        chunk = order[start:start + batch_size]
        states, mask = encoder_source([texts[i] for i in chunk])
        for row, index in enumerate(chunk):
            states_of[index] = states[row, mask[row].bool()].to("cpu", dtype)
    if entry_key is not None:
        entry = store.write(cache_dir, entry_key, [{FEATURE_KEY: s} for s in states_of])
        log(f"encoder-state cache: written to {entry}")
        states_of = [s[FEATURE_KEY] for s in store.read(entry, len(texts))]  # memory-mapped, as when reused
    _attach(states_of, features)


def _attach(states_of: list[torch.Tensor], features: list[dict]) -> None:
    for feature in features:
        feature[FEATURE_KEY] = states_of[feature["example_index"]]
