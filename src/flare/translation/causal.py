"""Machine translation with a prompted causal language model (Gemma, Llama, Qwen, ...).

``CausalLMTranslator(model, examples=pairs_for).translate(texts, src, tgt)`` has the same
interface, cache, statistics and progress bar as the seq2seq ``Translator`` (it is a subclass);
only the model input and the generation differ:

* **Prompt.** By default a few-shot prompt: an instruction line, then ``shots`` example pairs
  (``Indonesian: ...`` / ``English: ...``), then the text and the target-language name with the
  answer left open. The examples come from ``examples``: a callable ``(src, tgt) -> pairs`` or a
  mapping ``{(src, tgt): pairs}`` (canonical language codes); the pipeline passes the task's
  *validation* pairs, never test ones. ``shots + 1`` candidates are drawn once per direction
  (seeded, only pairs of at most ``max_example_chars`` characters on each side), and a text that
  is itself one of the candidates gets the spare one instead, so no prompt contains its own answer.
  A user ``template`` replaces the default: ``{source_language}``, ``{target_language}`` and
  ``{text}`` are filled in (``{examples}`` too, with the example block; a template without it is
  zero-shot); any other braces are kept as they are. Language names come from ``languages.py``.
* **Generation.** Prompts are tokenized with left padding (and, over ``max_input_length`` tokens,
  cut from the left: the earliest examples go first), then generated greedily (or with
  ``num_beams``) in batches with the KV cache, stopping at the end-of-sequence token or at any
  token that contains a line break. The output is cut at its first line break and stripped.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flare.errors import ConfigError
from flare.languages import Language, get_language, is_known
from flare.languages.tagging import Direction
from flare.translation.translator import Translator

ExamplePairs = Sequence[tuple[str, str]]
Examples = Callable[[str, str], ExamplePairs] | Mapping[tuple[str, str], ExamplePairs]

DEFAULT_INSTRUCTION = "Translate the following sentences from {source_language} into {target_language}."
PLACEHOLDERS = ("{source_language}", "{target_language}", "{text}", "{examples}")


@dataclass(frozen=True)
class _CausalDirection(Direction):
    src_language: str = ""  # the language names written into the prompt
    tgt_language: str = ""


def is_causal_lm(model: str | Any) -> bool:
    """Whether ``model`` (a path, hub id or config) is a decoder-only causal LM, by its config."""
    config = model if hasattr(model, "model_type") else _load_config(model)
    if getattr(config, "is_encoder_decoder", False):
        return False
    architectures = getattr(config, "architectures", None) or []
    if any(name.endswith("ForCausalLM") for name in architectures):
        return True
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return getattr(config, "model_type", None) in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def _load_config(model: Any) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(model))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot read the config of translation model {model!r} to tell whether it is a "
            f"sequence-to-sequence or a causal LM (set translation.kind to say): {err}"
        ) from err


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).strip()


class CausalLMTranslator(Translator):
    """Translate with a prompted causal LM; see the module doc. Extra arguments:

    ``examples`` (few-shot pairs per direction), ``shots`` (how many, default 3), ``template``
    (a user prompt), ``max_example_chars`` (longest example side, default 300), ``seed`` (which
    examples are drawn). Defaults differ from the seq2seq translator where prompts need it:
    ``num_beams=1``, ``max_input_length=1024`` (prompt tokens), ``max_new_tokens=128``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        examples: Examples | None = None,
        shots: int = 3,
        template: str | None = None,
        max_example_chars: int = 300,
        seed: int = 0,
        max_output_ratio: float | None = 2.0,
        reuse_prefix: bool = True,
        num_beams: int | None = 1,
        max_input_length: int = 1024,
        max_new_tokens: int = 128,
        **kwargs: Any,
    ):
        if shots < 0:
            raise ConfigError(f"shots must be 0 or more, got {shots}")
        if template is not None and "{text}" not in template:
            raise ConfigError(
                "the translation prompt template must contain {text} (where the text to translate goes); "
                f"it may also use {', '.join(p for p in PLACEHOLDERS if p != '{text}')}"
            )
        if kwargs.get("family") not in (None, "causal-lm"):
            raise ConfigError("a causal-LM translator has no model family to choose")
        kwargs.pop("family", None)
        self.examples = examples
        self.shots = shots
        self.template = template
        self.max_example_chars = max_example_chars
        self.seed = seed
        self.max_output_ratio = max_output_ratio
        self.reuse_prefix = reuse_prefix
        self._text_tokens: dict[str, int] = {}  # prompt -> tokens of its text (for the output bound)
        self._prefix_cache: tuple[tuple[int, ...], Any] | None = None
        self._candidates: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._stop_ids: list[int] | None = None
        super().__init__(
            model,
            tokenizer,
            num_beams=num_beams,
            max_input_length=max_input_length,
            max_new_tokens=max_new_tokens,
            family="plain",
            **kwargs,
        )
        self._family = "causal-lm"

    # -- loading ---------------------------------------------------------------------------
    def _auto_model_class(self) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def _prepare_model(self, move: bool, cast: bool = False) -> None:
        import torch

        from flare.core.lm_head import contiguous_lm_head_input

        model = self._model
        if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
            raise ConfigError(
                f"{type(model).__name__} is an encoder-decoder model: use Translator (translation.kind: seq2seq)"
            )
        if move:
            model.to(self.device)
        if cast:
            model.to(getattr(torch, self.dtype))
        contiguous_lm_head_input(model)  # generation's last-position slice: docs/core.md, "The LM head's input"
        model.eval()

    # -- languages and prompts -------------------------------------------------------------
    def _language(self, lang: str | Language, role: str) -> tuple[str, str]:
        """(name for the cache file, name in the prompt)."""
        if isinstance(lang, Language) or is_known(lang):
            language = get_language(lang)
            return language.code, language.name
        raw = str(lang).strip()
        if not raw or "\n" in raw:
            get_language(raw)  # raises the ConfigError listing the known codes
        self._warn_once(f"{role} language {raw!r} is not in the language table: named as such in the prompt")
        return raw, raw

    def _direction(self, src: str | Language, tgt: str | Language) -> Direction:
        src_name, src_language = self._language(src, "source")
        tgt_name, tgt_language = self._language(tgt, "target")
        return _CausalDirection(
            src_name, tgt_name, None, None, None, "", src_name == tgt_name, src_language, tgt_language
        )

    def candidates(self, src: str, tgt: str) -> list[tuple[str, str]]:
        """The ``shots + 1`` example pairs drawn for this direction (one spare)."""
        key = (src, tgt)
        if key not in self._candidates:
            pairs: ExamplePairs = ()
            if self.shots and self._uses_examples():
                if callable(self.examples):
                    pairs = self.examples(src, tgt)
                elif self.examples is not None:
                    pairs = self.examples.get(key, ())
            usable, seen = [], set()
            for source, target in pairs:
                source, target = _one_line(source), _one_line(target)
                if source and target and source not in seen and max(len(source), len(target)) <= self.max_example_chars:
                    seen.add(source)
                    usable.append((source, target))
            usable.sort()  # the draw does not depend on the order the pairs came in
            drawn = random.Random(self.seed).sample(usable, min(len(usable), self.shots + 1))
            if self.shots and self._uses_examples() and len(drawn) < self.shots + 1:
                self._warn_once(
                    f"{src}→{tgt}: only {len(drawn)} usable example pairs for a {self.shots}-shot prompt "
                    f"(pairs of at most {self.max_example_chars} characters per side)"
                )
            self._candidates[key] = drawn
        return self._candidates[key]

    def _uses_examples(self) -> bool:
        return self.template is None or "{examples}" in self.template

    def shots_for(self, text: str, direction: _CausalDirection) -> list[tuple[str, str]]:
        """The example pairs in the prompt of ``text``: never the text itself."""
        source = _one_line(text)
        chosen = [pair for pair in self.candidates(direction.src_name, direction.tgt_name) if pair[0] != source]
        return chosen[: self.shots]

    def prompt(self, text: str, src: str | Language, tgt: str | Language) -> str:
        """The prompt the model completes for ``text`` (for inspection; translate builds the same)."""
        direction = self._direction(src, tgt)
        assert isinstance(direction, _CausalDirection)
        return self._prompt(text, direction)

    def _prompt(self, text: str, direction: _CausalDirection) -> str:
        src_language, tgt_language = direction.src_language, direction.tgt_language
        block = "".join(
            f"{src_language}: {source}\n{tgt_language}: {target}\n\n"
            for source, target in self.shots_for(text, direction)
        )
        if self.template is None:
            instruction = DEFAULT_INSTRUCTION.format(source_language=src_language, target_language=tgt_language)
            return f"{instruction}\n\n{block}{src_language}: {_one_line(text)}\n{tgt_language}:"
        filled = self.template
        for placeholder, value in (
            ("{source_language}", src_language),
            ("{target_language}", tgt_language),
            ("{examples}", block),
        ):
            filled = filled.replace(placeholder, value)
        return filled.replace("{text}", _one_line(text))

    def _model_inputs(self, todo: list[str], direction: Direction) -> list[str]:
        assert isinstance(direction, _CausalDirection)
        prompts = [self._prompt(text, direction) for text in todo]
        if self.max_output_ratio is not None:
            tok = self.tokenizer
            for start in range(0, len(todo), 1024):
                texts = [_one_line(t) for t in todo[start : start + 1024]]
                counts = tok(texts, add_special_tokens=False, verbose=False)["input_ids"]
                for prompt, ids in zip(prompts[start : start + 1024], counts):
                    self._text_tokens[prompt] = len(ids)
        return prompts

    # -- translation -----------------------------------------------------------------------
    def settings(self, direction: Direction) -> dict[str, Any]:
        settings = super().settings(direction)
        assert isinstance(direction, _CausalDirection)
        candidates = self.candidates(direction.src_name, direction.tgt_name)
        blob = json.dumps(candidates, ensure_ascii=False).encode("utf-8", "surrogatepass")
        settings.update(
            src=direction.src_language,
            tgt=direction.tgt_language,
            prompt_format=1,
            template=self.template,
            shots=self.shots,
            examples_sha256=hashlib.sha256(blob).hexdigest()[:16],
            max_output_ratio=self.max_output_ratio,
        )
        return settings

    def stop_token_ids(self) -> list[int]:
        """The end-of-sequence id(s) and every token whose text contains a line break."""
        if self._stop_ids is None:
            tok = self.tokenizer
            ids: set[int] = set()
            eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
            for value in (eos, tok.eos_token_id):
                if isinstance(value, int):
                    ids.add(value)
                elif value:
                    ids.update(int(v) for v in value)
            size = len(tok)
            pieces = tok.batch_decode([[i] for i in range(size)])
            ids.update(i for i, piece in enumerate(pieces) if "\n" in piece)
            self._stop_ids = sorted(ids)
        return self._stop_ids

    def _output_bound(self, inputs: list[str]) -> int:
        """max_new_tokens, or less for a batch of short texts: ``max_output_ratio`` times the
        longest text's tokens, plus 16 (a model that does not stop stops there)."""
        if self.max_output_ratio is None:
            return self.max_new_tokens
        longest = max(self._text_tokens.get(prompt, self.max_new_tokens) for prompt in inputs)
        return max(1, min(self.max_new_tokens, math.ceil(self.max_output_ratio * longest) + 16))

    def _encode(self, inputs: list[str]) -> list[list[int]]:
        """Token ids of each prompt, cut from the left to max_input_length."""
        tok = self.tokenizer
        rows = tok(inputs, add_special_tokens=True, verbose=False)["input_ids"]
        return [list(row[-self.max_input_length :]) for row in rows]

    def _generate(self, inputs: list[str], direction: Direction, model: Any) -> list[str]:
        import torch

        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        rows = self._encode(inputs)
        kwargs: dict[str, Any] = {
            "max_new_tokens": self._output_bound(inputs),
            "do_sample": False,
            "use_cache": True,
            "eos_token_id": self.stop_token_ids(),
            "pad_token_id": tok.pad_token_id,
        }
        if self.num_beams is not None:
            kwargs["num_beams"] = self.num_beams
        kwargs.update(self.generation_kwargs)
        reuse = self.reuse_prefix and kwargs.get("num_beams", 1) in (None, 1)
        common = _common_prefix(rows) if reuse else 0
        if common >= 2:
            input_ids, mask, cache = self._with_prefix(rows, common, model)
            kwargs[_cache_argument(model)] = cache
        else:  # left padding
            width = max(len(row) for row in rows)
            input_ids = [[tok.pad_token_id] * (width - len(row)) + row for row in rows]
            mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
        input_ids = torch.tensor(input_ids, device=model.device)
        mask = torch.tensor(mask, device=model.device)
        with torch.inference_mode():
            generated = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        new = generated[:, input_ids.shape[1] :]
        texts = tok.batch_decode(new.tolist(), skip_special_tokens=True)
        return [text.lstrip(" \t").split("\n", 1)[0].strip() for text in texts]

    def _with_prefix(self, rows: list[list[int]], common: int, model: Any) -> tuple[list, list, Any]:
        """Inputs that reuse the KV cache of the prompts' shared first ``common`` tokens (the
        instruction and the examples): prefix, then padding, then each prompt's own rest. The
        attention mask hides the padding and the position ids follow the mask, so every row
        sees exactly its own prompt."""
        import torch

        prefix = tuple(rows[0][:common])
        if self._prefix_cache is None or self._prefix_cache[0] != prefix:
            with torch.inference_mode():
                out = model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True)
            cache = getattr(out, "cache", None)
            self._prefix_cache = (prefix, cache if cache is not None else out.past_key_values)
        cache = copy.deepcopy(self._prefix_cache[1])
        cache.batch_repeat_interleave(len(rows))
        rests = [row[common:] for row in rows]
        width = max(len(rest) for rest in rests)
        pad = self.tokenizer.pad_token_id
        input_ids = [list(prefix) + [pad] * (width - len(rest)) + rest for rest in rests]
        mask = [[1] * common + [0] * (width - len(rest)) + [1] * len(rest) for rest in rests]
        return input_ids, mask, cache


def _cache_argument(model: Any) -> str:
    """``cache`` (newer transformers 5 releases) or ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _common_prefix(rows: list[list[int]]) -> int:
    """Tokens all rows begin with, leaving each row at least one token of its own."""
    limit = min(len(row) for row in rows) - 1
    first = rows[0]
    for index in range(max(limit, 0)):
        if any(row[index] != first[index] for row in rows[1:]):
            return index
    return max(limit, 0)


def translator_kind(model: Any, kind: str = "auto") -> str:
    """``seq2seq`` or ``causal-lm``: ``kind`` itself, or for ``auto`` read from the model's config."""
    if kind not in ("auto", "seq2seq", "causal-lm"):
        raise ConfigError(f"translation kind must be auto, seq2seq or causal-lm, got {kind!r}")
    if kind != "auto":
        return kind
    loaded = not isinstance(model, (str, os.PathLike)) and hasattr(model, "config")
    return "causal-lm" if is_causal_lm(model.config if loaded else model) else "seq2seq"


def make_translator(model: Any, kind: str = "auto", **kwargs: Any) -> Translator:
    """A ``Translator`` (seq2seq) or a ``CausalLMTranslator``: ``kind`` is ``seq2seq``,
    ``causal-lm``, or ``auto`` (read from the model's config: decoder-only means causal-lm).
    Arguments only the causal-LM translator takes (examples, shots, template, ...) are dropped
    for a seq2seq model."""
    if translator_kind(model, kind) == "causal-lm":
        return CausalLMTranslator(model, **kwargs)
    for name in ("examples", "shots", "template", "max_example_chars", "seed"):
        kwargs.pop(name, None)
    return Translator(model, **kwargs)
