"""Stage 2 of FLARE: machine translation of task data, with a resumable disk cache.

* ``languages``: moved to ``flare.languages`` (codes, and how each MT family is told them).
* ``translator``: ``Translator(model).translate(texts, src, tgt)`` for any Hugging Face
  seq2seq translation model.
* ``causal``: ``CausalLMTranslator``, the same for a prompted causal LM (few-shot);
  ``make_translator`` picks one of the two from the model's config.
* ``quality``: chrF and BLEU against a human reference (sacrebleu), the quality file.
* ``cache``: the JSONL cache that makes translation resumable.
* ``qa_projection``: carry an extractive-QA answer span through translation.
* ``dataset``: translate the text fields of a data set.
* ``records``: read and copy the fields of a record (dict, dataclass, named tuple).

``docs/translation.md`` describes the whole stage.
"""

from flare.translation.cache import TranslationCache, cache_file
from flare.translation.causal import CausalLMTranslator, make_translator, translator_kind
from flare.translation.dataset import DatasetTranslationReport, translate_records
from flare.languages import (
    LANGUAGES,
    Language,
    ModelCode,
    detect_family,
    get_language,
    known_codes,
    m2m100_code,
    marian_codes,
    model_code,
    nllb_code,
)
from flare.translation.qa_projection import (
    ProjectedAnswer,
    ProjectionFailure,
    ProjectionReport,
    QATranslationReport,
    mark_answer,
    project_answers,
    translate_qa_records,
    unmark_answer,
)
from flare.translation.quality import QualityTable, score_translations
from flare.translation.translator import TranslationStats, Translator

__all__ = [
    "LANGUAGES",
    "CausalLMTranslator",
    "QualityTable",
    "make_translator",
    "score_translations",
    "translator_kind",
    "DatasetTranslationReport",
    "Language",
    "ModelCode",
    "ProjectedAnswer",
    "ProjectionFailure",
    "ProjectionReport",
    "QATranslationReport",
    "TranslationCache",
    "TranslationStats",
    "Translator",
    "cache_file",
    "detect_family",
    "get_language",
    "known_codes",
    "m2m100_code",
    "marian_codes",
    "mark_answer",
    "model_code",
    "nllb_code",
    "project_answers",
    "translate_qa_records",
    "translate_records",
    "unmark_answer",
]
