"""Sentences and tiny causal LMs for the translation tests (a module of its own, not conftest, so
that test files can import from it whichever test folders are collected together)."""

from __future__ import annotations

SENTENCES = [
    "the cat sat on the mat",
    "she went to the market yesterday",
    "hello world",
    "where is the capital city of indonesia",
    "jakarta is the capital of indonesia",
    "kucing itu duduk di atas tikar",
    "dia pergi ke pasar kemarin",
    "selamat pagi dunia",
    "di mana ibu kota indonesia",
    "jakarta adalah ibu kota indonesia",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "\" [ ] , . ? ! ' 0 1 2 3 4 5 6 7 8 9",
]

CAUSAL_WORDS = (
    "translate the following sentences from into indonesian english javanese german . : indonesian: english: "
    "javanese: german: label: negative neutral positive"
)


def causal_tokenizer(extra_texts=()):
    """Word-level, split on spaces only, with a line-break token of its own ('\\n' decodes to a
    line break) and a BOS, as a causal LM's tokenizer."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from flare.testing.tiny_tokenizer import SPECIAL

    words = []
    for text in (CAUSAL_WORDS, *SENTENCES, *extra_texts):
        words += [w for w in text.lower().split() if w not in words]
    vocab = {token: i for i, token in enumerate(SPECIAL + ["\n"] + words[: 123 - len(SPECIAL)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex("\n"), "isolated"), pre_tokenizers.Split(" ", "removed")]
    )
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def save_causal_lm(folder, tokenizer, seed=0, newline_boost=0.0, family="llama"):
    """A tiny random causal LM (Llama by default); ``newline_boost`` raises the line-break token's
    logits (so that some outputs hold a line break after a few words)."""
    import torch

    from flare.testing.tiny_models import tiny_model

    model = tiny_model(family, seed=seed, vocab_size=128, max_position_embeddings=512)
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head.mul_(8.0)  # a peaked random model: different inputs, different outputs
        head[4] *= newline_boost if newline_boost else 1.0
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
