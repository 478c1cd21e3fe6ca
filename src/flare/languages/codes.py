"""Our language codes and what each translation model family calls them: one written-down table
(``LANGUAGES``), so a reader can check every mapping by eye, and the look-ups over it. The
families and the fallbacks are described in ``flare.languages``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from flare.errors import ConfigError

FAMILIES = ("nllb", "m2m100", "marian")


@dataclass(frozen=True)
class Language:
    code: str  # canonical: ISO 639-1 if the language has one, else ISO 639-3
    name: str
    iso639_3: str
    nllb: str  # FLORES-200 code, or the stand-in when nllb_fallback is set
    m2m100: str | None  # None: M2M100 cannot translate this language at all
    marian: tuple[str, ...]  # OPUS-MT codes, preferred first
    nllb_fallback: str | None = None  # why `nllb` is a stand-in for another language
    m2m100_fallback: str | None = None
    aliases: tuple[str, ...] = ()


def _stand_in(name: str, model: str, by: str = "Indonesian") -> str:
    return (
        f"{model} has no {name}; {by}, the regional contact and national language, stands in "
        "(as in the FLARE authors' code): the 'translation' is Indonesian text, not " + name
    )


# fmt: off
LANGUAGES: tuple[Language, ...] = (
    # English and the NusaX languages (Indonesia)
    Language("en", "English", "eng", "eng_Latn", "en", ("en", "eng"), aliases=("english",)),
    Language("id", "Indonesian", "ind", "ind_Latn", "id", ("id", "ind"), aliases=("indonesian",)),
    Language("jv", "Javanese", "jav", "jav_Latn", "jv", ("jv", "jav"), aliases=("javanese",)),
    Language("su", "Sundanese", "sun", "sun_Latn", "su", ("su", "sun"), aliases=("sundanese",)),
    Language("ace", "Acehnese", "ace", "ace_Latn", "id", ("ace",), aliases=("acehnese",),
             m2m100_fallback=_stand_in("Acehnese", "M2M100")),
    Language("ban", "Balinese", "ban", "ban_Latn", "id", ("ban",), aliases=("balinese",),
             m2m100_fallback=_stand_in("Balinese", "M2M100")),
    Language("bjn", "Banjarese", "bjn", "bjn_Latn", "id", ("bjn",), aliases=("banjarese", "banjar"),
             m2m100_fallback=_stand_in("Banjarese", "M2M100")),
    Language("bug", "Buginese", "bug", "bug_Latn", "id", ("bug",), aliases=("buginese",),
             m2m100_fallback=_stand_in("Buginese", "M2M100")),
    Language("min", "Minangkabau", "min", "min_Latn", "id", ("min",), aliases=("minangkabau",),
             m2m100_fallback=_stand_in("Minangkabau", "M2M100")),
    Language("mad", "Madurese", "mad", "ind_Latn", "id", ("mad",), aliases=("madurese",),
             nllb_fallback=_stand_in("Madurese", "NLLB-200"),
             m2m100_fallback=_stand_in("Madurese", "M2M100")),
    Language("nij", "Ngaju", "nij", "ind_Latn", "id", ("nij",), aliases=("ngaju", "ngaju_dayak"),
             nllb_fallback=_stand_in("Ngaju", "NLLB-200"),
             m2m100_fallback=_stand_in("Ngaju", "M2M100")),
    Language("bbc", "Toba Batak", "bbc", "ind_Latn", "id", ("bbc",), aliases=("toba_batak", "batak_toba"),
             nllb_fallback=_stand_in("Toba Batak", "NLLB-200"),
             m2m100_fallback=_stand_in("Toba Batak", "M2M100")),
    # XNLI (besides en); TyDiQA and XQuAD add bn, fi, ko, te (the rest overlap)
    Language("ar", "Arabic", "ara", "arb_Arab", "ar", ("ar", "ara", "arb"), aliases=("arabic", "arb")),
    Language("bg", "Bulgarian", "bul", "bul_Cyrl", "bg", ("bg", "bul"), aliases=("bulgarian",)),
    Language("de", "German", "deu", "deu_Latn", "de", ("de", "deu"), aliases=("german", "ger")),
    Language("el", "Greek", "ell", "ell_Grek", "el", ("el", "ell"), aliases=("greek", "gre")),
    Language("es", "Spanish", "spa", "spa_Latn", "es", ("es", "spa"), aliases=("spanish",)),
    Language("fr", "French", "fra", "fra_Latn", "fr", ("fr", "fra"), aliases=("french", "fre")),
    Language("hi", "Hindi", "hin", "hin_Deva", "hi", ("hi", "hin"), aliases=("hindi",)),
    Language("ru", "Russian", "rus", "rus_Cyrl", "ru", ("ru", "rus"), aliases=("russian",)),
    Language("sw", "Swahili", "swa", "swh_Latn", "sw", ("sw", "swa", "swh"), aliases=("swahili", "swh")),
    Language("th", "Thai", "tha", "tha_Thai", "th", ("th", "tha"), aliases=("thai",)),
    Language("tr", "Turkish", "tur", "tur_Latn", "tr", ("tr", "tur"), aliases=("turkish",)),
    Language("ur", "Urdu", "urd", "urd_Arab", "ur", ("ur", "urd"), aliases=("urdu",)),
    Language("vi", "Vietnamese", "vie", "vie_Latn", "vi", ("vi", "vie"), aliases=("vietnamese",)),
    Language("zh", "Chinese (Simplified)", "zho", "zho_Hans", "zh",
             ("zh", "zho", "cmn", "cmn_Hans", "zho_Hans"), aliases=("chinese", "cmn", "chi")),
    Language("bn", "Bengali", "ben", "ben_Beng", "bn", ("bn", "ben"), aliases=("bengali", "bangla")),
    Language("fi", "Finnish", "fin", "fin_Latn", "fi", ("fi", "fin"), aliases=("finnish",)),
    Language("ko", "Korean", "kor", "kor_Hang", "ko", ("ko", "kor"), aliases=("korean",)),
    Language("te", "Telugu", "tel", "tel_Telu", None, ("te", "tel"), aliases=("telugu",)),
)
# fmt: on


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _build_index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    for lang in LANGUAGES:
        keys = {lang.code, lang.iso639_3, _norm(lang.name), *lang.aliases}
        if lang.nllb_fallback is None:  # a stand-in code names another language
            keys.add(lang.nllb)
        for key in keys:
            key = _norm(key)
            if key in index and index[key] is not lang:
                raise AssertionError(f"language alias {key!r} is ambiguous")
            index[key] = lang
    return index


_INDEX = _build_index()


def known_codes() -> list[str]:
    """The canonical codes, sorted."""
    return sorted(lang.code for lang in LANGUAGES)


def get_language(name: str | Language) -> Language:
    """Resolve a code or alias (``"jv"``, ``"jav"``, ``"javanese"``, ``"jav_Latn"``)."""
    if isinstance(name, Language):
        return name
    lang = _INDEX.get(_norm(name)) if isinstance(name, str) else None
    if lang is None:
        raise ConfigError(
            f"unknown language {name!r}; known codes: {', '.join(known_codes())} "
            "(also accepted: ISO 639-3 codes, English names, NusaX folder names such as "
            "'toba_batak', and NLLB codes such as 'jav_Latn')"
        )
    return lang


def is_known(name: str) -> bool:
    return isinstance(name, str) and _norm(name) in _INDEX


class ModelCode(NamedTuple):
    """A language code as one model family spells it, and why it is a stand-in (if it is)."""

    language: Language
    family: str
    code: str
    fallback: str | None  # None: the code really names this language


def model_code(name: str | Language, family: str, allow_fallback: bool = True) -> ModelCode:
    """The code that ``family`` ("nllb", "m2m100", "marian") uses for a language.

    For Marian this is the preferred code only; a model's tokenizer decides which of
    ``Language.marian`` it knows. Raises ConfigError where the family cannot translate the
    language, or where only a stand-in exists and ``allow_fallback`` is false.
    """
    lang = get_language(name)
    if family == "nllb":
        code, fallback = lang.nllb, lang.nllb_fallback
    elif family == "m2m100":
        code, fallback = lang.m2m100, lang.m2m100_fallback
        if code is None:
            raise ConfigError(
                f"M2M100 cannot translate {lang.name} ({lang.code}) and has no stand-in for it",
            )
    elif family == "marian":
        code, fallback = lang.marian[0], None
    else:
        raise ConfigError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    if fallback is not None and not allow_fallback:
        raise ConfigError(f"{fallback}; refused because fallbacks are disallowed")
    return ModelCode(lang, family, code, fallback)


def nllb_code(name: str | Language, allow_fallback: bool = True) -> str:
    return model_code(name, "nllb", allow_fallback).code


def m2m100_code(name: str | Language, allow_fallback: bool = True) -> str:
    return model_code(name, "m2m100", allow_fallback).code


def marian_codes(name: str | Language) -> tuple[str, ...]:
    return get_language(name).marian


def markdown_table() -> str:
    """The mapping as a Markdown table (used to write docs/translation.md)."""
    rows = [
        "| code | language | aliases | NLLB-200 | M2M100 | OPUS-MT (Marian) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for lang in LANGUAGES:
        aliases = sorted({lang.iso639_3, *lang.aliases} - {lang.code})
        nllb = f"`{lang.nllb}`" + (" (stand-in)" if lang.nllb_fallback else "")
        if lang.m2m100 is None:
            m2m = "none"
        else:
            m2m = f"`{lang.m2m100}`" + (" (stand-in)" if lang.m2m100_fallback else "")
        marian = ", ".join(f"`{c}`" for c in lang.marian)
        rows.append(f"| `{lang.code}` | {lang.name} | {', '.join(aliases)} | {nllb} | {m2m} | {marian} |")
    return "\n".join(rows)
