"""Tiny random translation models, built offline from configs (no model hub).

Each fixture writes a complete checkpoint folder (config, weights, tokenizer files) so that the
tests go through the same ``from_pretrained`` path as real NLLB / M2M100 / OPUS-MT checkpoints,
with the real tokenizer classes and their language tokens. Random weights translate into junk,
which is all these tests need. ``init_std`` is raised so that different inputs give different
outputs (needed to check that results come back in input order).
"""

from __future__ import annotations

import io
import json
import warnings

import pytest

from causal_testdata import SENTENCES, causal_tokenizer, save_causal_lm  # noqa: F401 (SENTENCES: used below)


TINY = dict(
    d_model=16,
    encoder_layers=1,
    decoder_layers=1,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=32,
    decoder_ffn_dim=32,
    max_position_embeddings=128,
    init_std=0.5,
    dropout=0.0,
    attention_dropout=0.0,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run faster on one thread than on two contended ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _spm_model(vocab_size: int = 90) -> bytes:
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type="bpe",
        hard_vocab_limit=False,
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        minloglevel=2,
    )
    return buffer.getvalue()


def _pieces(model: bytes) -> list[str]:
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=model)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


@pytest.fixture(scope="session")
def nllb_dir(tmp_path_factory):
    """An NLLB-200-like checkpoint: NllbTokenizer (all 202 FLORES codes) + M2M100 architecture."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bpe.train_from_iterator(
        SENTENCES, trainers.BpeTrainer(vocab_size=120, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    )
    spec = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in spec["merges"]]
    tokenizer = NllbTokenizer(vocab=spec["vocab"], merges=merges)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        **TINY,
    )
    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(config)
    model.generation_config.max_length = 200  # as in the real NLLB checkpoints
    with torch.no_grad():  # make the 202 language tokens unlikely outputs (the head is tied)
        ids = [i for t, i in tokenizer.get_added_vocab().items() if "_" in t]
        model.get_input_embeddings().weight[ids] = 0.0
    folder = tmp_path_factory.mktemp("nllb-200-tiny")
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def m2m100_dir(tmp_path_factory):
    """An M2M100-like checkpoint: M2M100Tokenizer (sentencepiece + vocab.json, __xx__ tokens)."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    folder = tmp_path_factory.mktemp("m2m100-tiny")
    model_bytes = _spm_model()
    (folder / "sentencepiece.bpe.model").write_bytes(model_bytes)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in _pieces(model_bytes):
        vocab.setdefault(piece, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = M2M100Tokenizer(str(folder / "vocab.json"), str(folder / "sentencepiece.bpe.model"))
    size = max(tokenizer.lang_code_to_id.values()) + 1 + tokenizer.num_madeup_words
    config = M2M100Config(
        vocab_size=size, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, **TINY
    )
    torch.manual_seed(1)
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _marian(folder, source_lang, target_lang, target_tokens, seed):
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    model_bytes = _spm_model()
    (folder / "source.spm").write_bytes(model_bytes)
    (folder / "target.spm").write_bytes(model_bytes)
    vocab = {"</s>": 0, "<unk>": 1}
    for token in target_tokens:
        vocab[token] = len(vocab)
    for piece in _pieces(model_bytes):
        vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Recommended: pip install sacremoses."
        tokenizer = MarianTokenizer(
            str(folder / "source.spm"),
            str(folder / "target.spm"),
            str(folder / "vocab.json"),
            source_lang=source_lang,
            target_lang=target_lang,
        )
    config = MarianConfig(
        vocab_size=len(vocab),
        pad_token_id=vocab["<pad>"],
        eos_token_id=0,
        decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=0,
        **TINY,
    )
    torch.manual_seed(seed)
    MarianMTModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def marian_en_id_dir(tmp_path_factory):
    """A one-direction OPUS-MT-like checkpoint named like Helsinki-NLP/opus-mt-en-id."""
    root = tmp_path_factory.mktemp("marian")
    folder = root / "opus-mt-en-id"
    folder.mkdir()
    return _marian(folder, None, None, [], seed=2)


@pytest.fixture(scope="session")
def marian_en_mul_dir(tmp_path_factory):
    """A multi-target OPUS-MT-like checkpoint: English to many, target chosen by >>xxx<< tokens."""
    folder = tmp_path_factory.mktemp("opus-mt-en-mul-tiny")
    return _marian(folder, "en", "mul", [">>ind<<", ">>jav<<", ">>cmn_Hans<<"], seed=3)


# ----------------------------------------------------------------------------- causal LMs
@pytest.fixture(scope="session")
def causal_lm_dir(tmp_path_factory):
    return save_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"), causal_tokenizer())
