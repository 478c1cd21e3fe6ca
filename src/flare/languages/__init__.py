"""Which language code each translation model family expects, for the languages our tasks use.

One written-down table (``LANGUAGES``), so a reader can check every mapping by eye. Each
``Language`` has a canonical ``code`` (ISO 639-1 where the language has one, else ISO 639-3,
the codes the task loaders use) and accepts aliases: its ISO 639-3 code, its English name, the
NusaX folder name (``javanese``, ``toba_batak``, ...), the authors' codes (``ben``, ``tel``,
``ind``, ``bbc``, ``nij``) and its NLLB code itself.

Model families:

* **NLLB-200** (``facebook/nllb-200-*``): FLORES-200 codes ``xxx_Scrp``. NLLB-200 has no
  Madurese (mad), Ngaju (nij) or Toba Batak (bbc); like the authors' code we map those to
  Indonesian (``ind_Latn``), but with an explicit ``fallback`` reason so that callers can warn
  or refuse (``allow_fallback=False``).
* **M2M100** (``facebook/m2m100_*``): ISO 639-1 codes, language tokens ``__xx__``. It lacks the
  Indonesian regional languages except Javanese and Sundanese (fallback: Indonesian, flagged),
  and Telugu (no fallback: refused).
* **Marian / OPUS-MT** (``Helsinki-NLP/opus-mt-SRC-TGT``): one direction per model, named with
  ISO 639-1 codes where they exist and ISO 639-3 otherwise; multi-target models select the
  target with a ``>>xxx<<`` token (ISO 639-3, sometimes with a script). ``marian`` lists the
  candidate codes, preferred first; which ones a model knows is read from its tokenizer.

`detect_family(tokenizer, config)` tells which of these a translation model (or the FLARE-MT
encoder of one) is, from its tokenizer and config.

The NLLB and M2M100 codes are checked in the tests against the language lists that ship with
``transformers`` (``tokenization_nllb.FAIRSEQ_LANGUAGE_CODES`` and the M2M100 equivalent).

The package: ``codes`` (the table and its look-ups), ``tagging`` (a model's family, language
tokens and directions, as the translation engine and the FLARE-MT encoder source use them).
"""

from flare.languages.codes import (
    FAMILIES,
    LANGUAGES,
    Language,
    ModelCode,
    get_language,
    is_known,
    known_codes,
    m2m100_code,
    marian_codes,
    markdown_table,
    model_code,
    nllb_code,
)
from flare.languages.tagging import detect_family

__all__ = [
    "FAMILIES",
    "LANGUAGES",
    "Language",
    "ModelCode",
    "detect_family",
    "get_language",
    "is_known",
    "known_codes",
    "m2m100_code",
    "marian_codes",
    "markdown_table",
    "model_code",
    "nllb_code",
]
