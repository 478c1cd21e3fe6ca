"""Moved to flare.heads (qa, span_qa, generative_qa, settings); this name stays for old imports."""

from flare.heads.generative_qa import FUSION_BLOCK, QA_PROMPT, DecoderGenerativeQA, extract_generated_answer, fit_context
from flare.heads.qa import QAHead, cut_to_tokens, first_answer
from flare.heads.settings import QASettings
from flare.heads.span_qa import EncoderSpanQA, answer_token_span, best_answer, span_candidates

__all__ = ["FUSION_BLOCK", "QA_PROMPT", "DecoderGenerativeQA", "EncoderSpanQA", "QAHead", "QASettings",
           "answer_token_span", "best_answer", "cut_to_tokens", "extract_generated_answer", "first_answer",
           "fit_context", "span_candidates"]
