"""A word-level tokenizer built offline from a few texts, for tiny models in tests and demos."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL = ["<pad>", "<s>", "</s>", "<unk>"]  # ids 0..3, matching the tiny models' pad/bos/eos


def tiny_tokenizer(texts: Iterable[str], vocab_size: int = 128) -> PreTrainedTokenizerFast:
    counts = Counter(word for text in texts for word in text.lower().split())
    words = [w for w, _ in counts.most_common(vocab_size - len(SPECIAL))]
    vocab = {token: i for i, token in enumerate(SPECIAL + words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")
