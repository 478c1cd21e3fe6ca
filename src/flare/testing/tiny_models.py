"""Tiny randomly initialised models of each supported family, built from configs.

Dropout is off so that outputs are deterministic in train mode too.
"""

from __future__ import annotations

import torch
import transformers as tf

VOCAB = 128
COMMON = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
              intermediate_size=64, pad_token_id=0)
DECODER = dict(COMMON, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
               bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)

FAMILIES = {
    # name: (config class, model class for the task, config kwargs, kind)
    "bert": (tf.BertConfig, tf.BertForSequenceClassification,
             dict(COMMON, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3), "encoder"),
    "xlm-roberta": (tf.XLMRobertaConfig, tf.XLMRobertaForSequenceClassification,
                    dict(COMMON, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3,
                         pad_token_id=1, max_position_embeddings=256), "encoder"),
    "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, DECODER, "decoder"),
    "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM, dict(DECODER, sliding_window=16), "decoder"),
    "gemma3": (tf.Gemma3TextConfig, tf.Gemma3ForCausalLM, dict(DECODER, sliding_window=16), "decoder"),
    "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, DECODER, "decoder"),
    "mt5": (tf.MT5Config, tf.MT5ForConditionalGeneration,
            dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=3, num_decoder_layers=2,
                 num_heads=4, dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                 tie_word_embeddings=False), "encoder-decoder"),
}


def tiny_model(family: str, seed: int = 0, attn_implementation: str | None = None, **overrides):
    """A tiny random model of `family` (see FAMILIES), in train mode with no dropout."""
    config_cls, model_cls, kwargs, _ = FAMILIES[family]
    config = config_cls(**{**kwargs, **overrides})
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    model = model_cls(config)
    model.train()
    return model


def family_kind(family: str) -> str:
    return FAMILIES[family][3]


def random_batch(family: str, batch: int = 2, length: int = 8, seed: int = 0, labels: bool = True):
    """Random token ids with an all-ones mask, plus labels fitting the family's task."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB, (batch, length), generator=generator)
    out = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if labels:
        kind = family_kind(family)
        if kind == "encoder":
            out["labels"] = torch.randint(0, 3, (batch,), generator=generator)
        elif kind == "decoder":
            out["labels"] = input_ids.clone()
        else:
            out["labels"] = torch.randint(3, VOCAB, (batch, 4), generator=generator)
    return out
