"""How each translation model family is told the languages of a request: which family a model is,
its language codes and tokens (the tokenizer's ``src_lang``, the forced first output token, Marian's
one direction and ``>>xxx<<`` target token), and the language tokens removed from its outputs.

Model families (``detect_family``, from the tokenizer):

* ``nllb``: NLLB-200 checkpoints (``NllbTokenizer``; FLORES-200 codes such as ``ind_Latn``).
  The tokenizer's ``src_lang`` puts the source language token in front of the input, and
  generation is forced to start with the target language token (``forced_bos_token_id``).
* ``m2m100``: M2M100 checkpoints (``M2M100Tokenizer``; ``__id__`` tokens), handled the same way
  with the M2M100 codes.
* ``marian``: OPUS-MT / Marian checkpoints, one direction per model. The direction the model was
  trained for is read from its tokenizer (``source_lang``/``target_lang``) or its name
  (``opus-mt-en-id``); a request that contradicts it is refused. Multi-target models get the
  ``>>xxx<<`` target token in front of each input.
* ``tagged``: another tokenizer with a ``src_lang`` attribute (e.g. mBART-50): languages must be
  given as the model's own language tokens (``en_XX``), used as such.
* ``plain``: no language tokens at all; the languages only name the cache file.

Used by the translation engine (``flare.translation.translator``) and by the FLARE-MT encoder
source (``flare.sources.encoder``), which tags its input with the text's own language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flare.errors import ConfigError
from flare.languages.codes import Language, get_language, is_known, model_code

NLLB_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Direction:
    """How one (src, tgt) request is carried out by a model."""

    src_name: str  # for the cache file: canonical code, or the raw code given
    tgt_name: str
    src_code: str | None  # the model's code (tokenizer src_lang), None where unused
    tgt_code: str | None
    forced_bos_token_id: int | None
    prefix: str  # put in front of every input (Marian multi-target token)
    same_language: bool


def detect_family(tokenizer: Any, config: Any = None) -> str:
    """One of ``nllb``, ``m2m100``, ``marian``, ``tagged``, ``plain`` (see flare.languages)."""
    model_type = getattr(config, "model_type", None)
    cls = type(tokenizer).__name__.lower()
    if model_type == "marian" or cls.startswith("marian"):
        return "marian"
    if hasattr(tokenizer, "lang_code_to_id") and hasattr(tokenizer, "get_lang_id"):
        return "m2m100"
    if cls.startswith("nllb") or token_id(tokenizer, "eng_Latn") is not None:
        return "nllb"
    if hasattr(tokenizer, "src_lang"):
        return "tagged"
    return "plain"


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` when the tokenizer has it as one token, else None."""
    try:
        found = tokenizer.convert_tokens_to_ids(token)
    except (KeyError, ValueError, TypeError):
        return None
    if found is None or (found == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(found)


def language_code(tokenizer: Any, family: str, lang: str | Language, role: str, allow_fallback: bool,
                  warn: Warn) -> tuple[str, str]:
    """(name for the cache file, the model's code) for a language given by the caller."""
    if isinstance(lang, Language) or is_known(lang):
        language = get_language(lang)
        if family in ("nllb", "m2m100"):
            code = model_code(language, family, allow_fallback)
            if code.fallback:
                warn(f"{role} language {language.code}: {code.fallback}")
            return language.code, code.code
        return language.code, language.code
    raw = str(lang)
    if family == "nllb" and token_id(tokenizer, raw) is not None:
        return raw, raw
    if family == "m2m100":
        raw_code = raw.strip("_")
        if raw_code in tokenizer.lang_code_to_id:
            return raw_code, raw_code
    if family == "tagged" and token_id(tokenizer, raw) is not None:
        return raw, raw
    if family in ("marian", "plain") and re.fullmatch(r"[A-Za-z][A-Za-z_-]{1,15}", raw):
        return raw, raw  # named only in the cache file (and Marian's target token)
    get_language(raw)  # raises the ConfigError listing the known codes
    raise AssertionError("unreachable")


def resolve_direction(tokenizer: Any, family: str, model_name: str, src: str | Language, tgt: str | Language, *,
                      allow_fallback: bool, warn: Warn,
                      marian_direction: Callable[[], tuple[str | None, str | None]]) -> Direction:
    """How the model translates ``src`` to ``tgt``; ``marian_direction`` gives the (source, target)
    a Marian model was trained for (see ``marian_languages``)."""
    src_name, src_code = language_code(tokenizer, family, src, "source", allow_fallback, warn)
    tgt_name, tgt_code = language_code(tokenizer, family, tgt, "target", allow_fallback, warn)
    same = src_name == tgt_name
    forced_bos: int | None = None
    prefix = ""
    if family == "nllb" or family == "tagged":
        for code in (src_code, tgt_code):
            if token_id(tokenizer, code) is None:
                raise ConfigError(f"the tokenizer of {model_name} has no language token {code!r}")
        forced_bos = token_id(tokenizer, tgt_code)
    elif family == "m2m100":
        for code in (src_code, tgt_code):
            if code not in tokenizer.lang_code_to_id:
                raise ConfigError(f"the tokenizer of {model_name} has no language code {code!r}")
        forced_bos = int(tokenizer.get_lang_id(tgt_code))
    elif family == "marian":
        prefix = marian_prefix(tokenizer, model_name, src, tgt, marian_direction(), warn)
        src_code = tgt_code = None
    else:  # plain
        src_code = tgt_code = None
        warn(f"{model_name}: no language tokens known for this model; the requested languages are not passed to it")
    return Direction(src_name, tgt_name, src_code, tgt_code, forced_bos, prefix, same)


def marian_languages(tokenizer: Any, model_name: str) -> tuple[str | None, str | None]:
    """The (source, target) side a Marian model was trained for, as named by it: its tokenizer's
    ``source_lang``/``target_lang``, else its name (``opus-mt-en-id``)."""
    src = getattr(tokenizer, "source_lang", None)
    tgt = getattr(tokenizer, "target_lang", None)
    if not (src and tgt):
        name = Path(str(model_name).rstrip("/\\")).name
        match = re.search(r"opus-mt-(?:tc-(?:big|base)-)?([A-Za-z_]+)-([A-Za-z_]+)$", name)
        if match:
            src, tgt = src or match.group(1), tgt or match.group(2)
    return src, tgt


def marian_prefix(tokenizer: Any, model_name: str, src: str | Language, tgt: str | Language,
                  model_direction: tuple[str | None, str | None], warn: Warn) -> str:
    """Check that a Marian model translates src→tgt; the target token multi-target models need."""
    model_src, model_tgt = model_direction
    if model_src is None and model_tgt is None:
        warn(
            f"{model_name}: cannot tell which direction this Marian model translates "
            "(no source_lang/target_lang in its tokenizer, no opus-mt-SRC-TGT name); trusting the caller"
        )
    for side, asked, role in ((model_src, src, "source"), (model_tgt, tgt, "target")):
        # only a side that names one language of our table can be checked; a group such as
        # 'mul' or 'ROMANCE' is checked through the target token below
        if side is None:
            continue
        asked_lang = get_language(asked) if (isinstance(asked, Language) or is_known(asked)) else None
        if is_known(side):
            asked_ok = asked_lang is get_language(side)
        elif len(side) == 2 and side.isalpha():  # an ISO 639-1 code always names one language
            asked_codes = {str(asked).lower()} if asked_lang is None else {asked_lang.code, *asked_lang.marian}
            asked_ok = side.lower() in {c.lower() for c in asked_codes}
        else:
            continue
        if not asked_ok:
            shown = asked_lang.code if asked_lang is not None else asked
            raise ConfigError(
                f"{model_name} translates {model_src}→{model_tgt}, but {role} language "
                f"{shown!r} was asked for; a Marian model translates one direction only: pick "
                "the opus-mt model for this direction, or a many-to-many model such as NLLB"
            )
    supported = list(getattr(tokenizer, "supported_language_codes", None) or [])
    target_checked = model_tgt is not None and is_known(model_tgt)  # and it matched, above
    if not supported:
        return ""
    candidates = get_language(tgt).marian if (isinstance(tgt, Language) or is_known(tgt)) else (str(tgt),)
    for code in candidates:
        token = code if code.startswith(">>") else f">>{code}<<"
        if token in supported:
            return token + " "
    for code in candidates:  # a script variant, e.g. >>cmn_Hans<< for cmn
        for token in supported:
            if token.startswith(f">>{code}_"):
                return token + " "
    if target_checked:  # a one-target model that happens to have language tokens
        return ""
    shown = ", ".join(supported[:20]) + (" ..." if len(supported) > 20 else "")
    raise ConfigError(
        f"{model_name} is a multi-target Marian model without a target token for {tgt!r} "
        f"(tried {', '.join(candidates)}; it has {shown})"
    )


def language_token_ids(tokenizer: Any, family: str) -> set[int]:
    """The family's language tokens, to remove from outputs before decoding (some tokenizers keep them)."""
    ids: set[int] = set()
    if family == "m2m100":
        ids.update(int(i) for i in tokenizer.lang_code_to_id.values())
    elif family == "nllb":
        for token, found in tokenizer.get_added_vocab().items():
            if NLLB_CODE.match(token):
                ids.add(int(found))
    return ids
