"""Machine translation with any Hugging Face sequence-to-sequence translation model.

``Translator(model).translate(texts, src, tgt)`` returns one translation per text, in order.

This module is the engine. The model family (nllb, m2m100, marian, tagged, plain) is detected
from the tokenizer (override with ``family=``); how each family is told the languages is
``flare.languages.tagging``. Languages are our codes or aliases (``flare.languages``), or a
model's raw language code.
Texts are deduplicated, empty texts returned unchanged, the rest sorted by token length
(longest first) and translated in batches; with ``cache_dir`` each batch is written to a
JSONL cache as soon as it is done (``cache.py``), so a killed run resumes and a repeated run
loads no model at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from flare.errors import ConfigError, DataError
from flare.heap import HeapTrim
from flare.languages import FAMILIES, Language
from flare.languages.tagging import (
    Direction,
    detect_family,
    language_token_ids,
    marian_languages,
    resolve_direction,
)
from flare.translation.cache import TranslationCache, cache_file

logger = logging.getLogger(__name__)

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


@dataclass
class TranslationStats:
    """What one or more ``translate`` calls did. Counts of distinct texts unless noted."""

    total: int = 0  # texts asked for (with repeats)
    empty: int = 0  # empty or whitespace-only texts (with repeats): returned unchanged
    unique: int = 0  # distinct non-empty texts
    cached: int = 0  # distinct texts found in the cache
    translated: int = 0  # distinct texts run through the model
    truncated: int = 0  # of those, inputs cut at max_input_length tokens
    batches: int = 0  # model calls

    def __add__(self, other: TranslationStats) -> TranslationStats:
        return TranslationStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def summary(self) -> str:
        text = (
            f"{self.total} texts ({self.unique} distinct, {self.empty} empty): "
            f"{self.cached} from the cache, {self.translated} translated in {self.batches} batches"
        )
        if self.truncated:
            text += f"; {self.truncated} inputs truncated"
        return text


def _resolve_device(device: Any) -> str:
    import torch

    if device is not None:
        return str(device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_dtype(dtype: Any, device: str) -> str:
    """A dtype name; None means float16 on CUDA and float32 elsewhere."""
    if dtype is None:
        return "float16" if device.startswith("cuda") else "float32"
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of float32, float16, bfloat16")
    return _DTYPES[name]


class Translator:
    """Translate texts with a Hugging Face seq2seq translation model.

    ``model`` is a hub id, a local folder, or an already loaded model (then pass its
    ``tokenizer`` too). Models given by name are loaded only when something has to be
    translated. ``num_beams=None`` keeps the checkpoint's own setting; ``max_input_length``
    truncates inputs (counted in the stats), ``max_new_tokens`` bounds outputs. ``device=None``
    means CUDA when present (for a loaded model: where it already is); ``dtype=None`` means
    float16 on CUDA and float32 otherwise (a loaded model keeps its dtype). ``progress=None``
    shows a progress bar only on a terminal.
    """

    def __init__(
        self,
        model: str | os.PathLike | Any,
        tokenizer: str | os.PathLike | Any | None = None,
        *,
        batch_size: int = 16,
        num_beams: int | None = None,
        max_input_length: int = 256,
        max_new_tokens: int = 256,
        device: str | Any | None = None,
        dtype: str | Any | None = None,
        cache_dir: str | os.PathLike | None = None,
        model_name: str | None = None,
        family: str | None = None,
        allow_fallback: bool = True,
        progress: bool | None = None,
        generation_kwargs: Mapping[str, Any] | None = None,
    ):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if num_beams is not None and num_beams < 1:
            raise ConfigError(f"num_beams must be at least 1, got {num_beams}")
        if max_input_length < 1 or max_new_tokens < 1:
            raise ConfigError("max_input_length and max_new_tokens must be at least 1")
        if family is not None and family not in (*FAMILIES, "tagged", "plain"):
            raise ConfigError(f"unknown family {family!r}; use nllb, m2m100, marian, tagged or plain")
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_input_length = max_input_length
        self.max_new_tokens = max_new_tokens
        self.allow_fallback = allow_fallback
        self.progress = progress
        self.generation_kwargs = dict(generation_kwargs or {})
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._family = family

        if isinstance(model, (str, os.PathLike)):
            self._model = None
            self._model_source = str(model)
            local = Path(model).expanduser()
            self.model_name = model_name or (str(local.resolve()) if local.exists() else str(model))
            self.device = _resolve_device(device)
            self.dtype = _resolve_dtype(dtype, self.device)
            self._tokenizer_source = tokenizer if tokenizer is not None else model
            self._tokenizer = None if isinstance(self._tokenizer_source, (str, os.PathLike)) else tokenizer
        else:
            if tokenizer is None:
                raise ConfigError("a loaded model needs its tokenizer: Translator(model, tokenizer)")
            self._model = model
            self._model_source = None
            self.model_name = model_name or getattr(model, "name_or_path", "") or ""
            if not self.model_name and self.cache_dir is not None:
                raise ConfigError("pass model_name= to cache translations of a model given as an object")
            current = next(model.parameters())
            self.device = str(current.device) if device is None else str(device)
            if dtype is None:  # keep the model's own dtype (it may be quantized)
                self.dtype = str(current.dtype).removeprefix("torch.")
            else:
                self.dtype = _resolve_dtype(dtype, self.device)
            self._tokenizer_source = tokenizer
            self._tokenizer = None if isinstance(tokenizer, (str, os.PathLike)) else tokenizer
            self._prepare_model(move=device is not None, cast=dtype is not None)
        self._caches: dict[tuple[str, str, str], TranslationCache] = {}
        self._warned: set[str] = set()
        self._strip_cache: set[int] | None = None
        self.last_stats = TranslationStats()
        self.total_stats = TranslationStats()

    # -- loading ---------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_source)
            except (OSError, ValueError) as err:
                raise ConfigError(
                    f"cannot load the tokenizer of translation model {self._tokenizer_source!r} "
                    f"(a hub id needs network access or a filled Hugging Face cache; a folder needs "
                    f"the tokenizer files): {err}"
                ) from err
        return self._tokenizer

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def _auto_model_class(self) -> Any:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    @property
    def model(self) -> Any:
        if self._model is None:
            import torch

            logger.info(
                "loading translation model %s on %s (%s)", self._model_source, self.device, self.dtype
            )
            try:
                self._model = self._auto_model_class().from_pretrained(
                    self._model_source, dtype=getattr(torch, self.dtype)
                )
            except (OSError, ValueError) as err:
                raise ConfigError(
                    f"cannot load translation model {self._model_source!r} (a hub id needs network "
                    f"access or a filled Hugging Face cache): {err}"
                ) from err
            self._prepare_model(move=True)
        return self._model

    def _prepare_model(self, move: bool, cast: bool = False) -> None:
        """Check the model, put it on ``self.device`` (if ``move``) and cast it (if ``cast``)."""
        import torch

        model = self._model
        if not getattr(getattr(model, "config", None), "is_encoder_decoder", False):
            raise ConfigError(
                f"{type(model).__name__} is not an encoder-decoder model; translation needs a "
                "sequence-to-sequence model such as NLLB, M2M100 or Marian"
            )
        if move:
            model.to(self.device)
        if cast:
            model.to(getattr(torch, self.dtype))
        model.eval()

    @property
    def family(self) -> str:
        if self._family is None:
            config = self._model.config if self._model is not None else None
            self._family = detect_family(self.tokenizer, config)
        return self._family

    # -- languages -------------------------------------------------------------------------
    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning(message)

    def _direction(self, src: str | Language, tgt: str | Language) -> Direction:
        return resolve_direction(self.tokenizer, self.family, self.model_name, src, tgt,
                                 allow_fallback=self.allow_fallback, warn=self._warn_once,
                                 marian_direction=self._marian_direction)

    def _marian_direction(self) -> tuple[str | None, str | None]:
        """The (source, target) side the Marian model was trained for, as named by it."""
        return marian_languages(self.tokenizer, self.model_name)

    # -- translation -----------------------------------------------------------------------
    def settings(self, direction: Direction) -> dict[str, Any]:
        """Everything that decides the output besides the text: the cache key covers it."""
        return {
            "model": self.model_name,
            "family": self.family,
            "src": direction.src_code,
            "tgt": direction.tgt_code,
            "forced_bos_token_id": direction.forced_bos_token_id,
            "prefix": direction.prefix,
            "num_beams": self.num_beams,
            "max_input_length": self.max_input_length,
            "max_new_tokens": self.max_new_tokens,
            "dtype": self.dtype,
            "generation_kwargs": self.generation_kwargs,
        }

    def _cache(self, direction: Direction) -> TranslationCache | None:
        if self.cache_dir is None:
            return None
        settings = self.settings(direction)
        key = (direction.src_name, direction.tgt_name, repr(sorted(settings.items())))
        if key not in self._caches:
            path = cache_file(self.cache_dir, self.model_name, direction.src_name, direction.tgt_name)
            cache = TranslationCache(path, settings)
            if cache.dropped_tail:
                logger.warning("%s: ignored a truncated last line (left by an interrupted run)", path)
            self._caches[key] = cache
        return self._caches[key]

    def translate(self, texts: Sequence[str], src: str | Language, tgt: str | Language) -> list[str]:
        """Translate each text from ``src`` to ``tgt``; same length and order as ``texts``."""
        if isinstance(texts, str):
            raise ConfigError("translate() takes a list of texts, not one string")
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(
                    f"text {index} to translate is a {type(text).__name__}, not a string", row=index
                )
        stats = TranslationStats(total=len(texts))
        direction = self._direction(src, tgt)
        results: dict[str, str] = {}
        todo: list[str] = []
        for text in texts:
            if not text.strip():
                stats.empty += 1
            elif text not in results:
                results[text] = ""
                todo.append(text)
        stats.unique = len(todo)
        if direction.same_language:
            self._warn_once(f"source and target are both {direction.src_name}: texts returned unchanged")
            results = {text: text for text in todo}
            todo = []
        cache = self._cache(direction)
        if cache is not None:
            missing = []
            for text in todo:
                hit = cache.get(text)
                if hit is None:
                    missing.append(text)
                else:
                    results[text] = hit
            stats.cached = len(todo) - len(missing)
            todo = missing
        if todo:
            self._run(todo, direction, cache, results, stats)
        self.last_stats = stats
        self.total_stats = self.total_stats + stats
        if stats.truncated:
            logger.warning(
                "%d of %d inputs were longer than max_input_length=%d tokens and were truncated",
                stats.truncated,
                stats.translated,
                self.max_input_length,
            )
        return [results.get(text, text) if text.strip() else text for text in texts]

    def _run(
        self,
        todo: list[str],
        direction: Direction,
        cache: TranslationCache | None,
        results: dict[str, str],
        stats: TranslationStats,
    ) -> None:
        from tqdm.auto import tqdm

        model = self.model  # loads it if needed
        tok = self.tokenizer
        if direction.src_code is not None:
            tok.src_lang = direction.src_code
        inputs = self._model_inputs(todo, direction)
        lengths: list[int] = []
        for start in range(0, len(inputs), 1024):  # chunks: keep only the lengths in memory
            encoded = tok(inputs[start : start + 1024], add_special_tokens=True, verbose=False)
            lengths.extend(len(ids) for ids in encoded["input_ids"])
        order = sorted(range(len(todo)), key=lambda i: -lengths[i])
        stats.translated = len(todo)
        stats.truncated = sum(length > self.max_input_length for length in lengths)
        bar = tqdm(
            total=len(todo),
            unit="text",
            desc=f"translate {direction.src_name}→{direction.tgt_name}",
            disable=None if self.progress is None else not self.progress,
        )
        trim = HeapTrim()
        try:
            for start in range(0, len(order), self.batch_size):
                trim()
                batch = order[start : start + self.batch_size]
                outputs = self._generate([inputs[i] for i in batch], direction, model)
                stats.batches += 1
                pairs = [(todo[i], out) for i, out in zip(batch, outputs, strict=True)]
                for text, out in pairs:
                    results[text] = out
                if cache is not None:
                    cache.add_many(pairs)
                bar.update(len(batch))
        finally:
            bar.close()

    def _model_inputs(self, todo: list[str], direction: Direction) -> list[str]:
        """What the model reads for each text (here: the text, after any target token)."""
        return [direction.prefix + text for text in todo]

    def _strip_ids(self) -> set[int]:
        """Language tokens, removed from outputs before decoding (some tokenizers keep them)."""
        return language_token_ids(self.tokenizer, self.family)

    def _generate(self, inputs: list[str], direction: Direction, model: Any) -> list[str]:
        import torch

        tok = self.tokenizer
        encoded = tok(
            inputs, return_tensors="pt", padding=True, truncation=True, max_length=self.max_input_length
        )
        encoded = {k: v.to(model.device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}
        # the output bound goes in as max_length (decoder start token + max_new_tokens): passing
        # max_new_tokens makes transformers warn on every batch for checkpoints whose generation
        # config sets max_length (NLLB's says 200)
        kwargs: dict[str, Any] = {
            "max_length": self.max_new_tokens + 1,
            "max_new_tokens": None,
            "do_sample": False,
        }
        if self.num_beams is not None:
            kwargs["num_beams"] = self.num_beams
        if direction.forced_bos_token_id is not None:
            kwargs["forced_bos_token_id"] = direction.forced_bos_token_id
        kwargs.update(self.generation_kwargs)
        with torch.inference_mode():
            generated = model.generate(**encoded, **kwargs)
        if self._strip_cache is None:
            self._strip_cache = self._strip_ids()
        rows = [[t for t in row if t not in self._strip_cache] for row in generated.tolist()]
        return [text.strip() for text in tok.batch_decode(rows, skip_special_tokens=True)]
