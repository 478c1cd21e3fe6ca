import json
import logging

import pytest

from flare.errors import ConfigError, DataError
from flare.translation import Translator, detect_family

# Marian tokenizers ask for the optional sacremoses package (punctuation normalisation)
pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses:UserWarning")

TEXTS = [
    "the cat sat on the mat",
    "hello world",
    "",
    "she went to the market yesterday",
    "where is the capital city of indonesia",
    "hello world",
    "jakarta",
    "   ",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
]


class Spy:
    """Wraps model.generate and records what each call got."""

    def __init__(self, translator, fail_on_call=None):
        self.model = translator.model
        self.original = self.model.generate
        self.calls = []
        self.fail_on_call = fail_on_call
        self.model.generate = self

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt("killed")
        out = self.original(**kwargs)
        self.calls[-1]["output"] = out
        return out

    @property
    def rows(self):
        return sum(len(call["input_ids"]) for call in self.calls)


def make(folder, **kwargs):
    kwargs.setdefault("max_new_tokens", 6)
    kwargs.setdefault("progress", False)
    return Translator(str(folder), **kwargs)


# -- NLLB ---------------------------------------------------------------------------------------


def test_nllb_language_tokens_order_and_dedup(nllb_dir):
    tr = make(nllb_dir, batch_size=3)
    assert tr.family == "nllb"
    spy = Spy(tr)
    out = tr.translate(TEXTS, "en", "javanese")
    assert len(out) == len(TEXTS)
    assert out[2] == "" and out[7] == "   "  # empty texts come back unchanged
    assert out[1] == out[5]
    assert spy.rows == 6  # 6 distinct non-empty texts, each translated once
    tok = tr.tokenizer
    eng, jav = tok.convert_tokens_to_ids("eng_Latn"), tok.convert_tokens_to_ids("jav_Latn")
    for call in spy.calls:
        assert call["forced_bos_token_id"] == jav
        assert (call["input_ids"][:, 0] == eng).all()  # source language token first
        assert (call["output"][:, 1] == jav).all()  # decoder start, then the target language
    # longest first: the batches come sorted by token length
    lengths = [int(n) for call in spy.calls for n in call["attention_mask"].sum(dim=1)]
    assert lengths == sorted(lengths, reverse=True)
    assert not any("jav_Latn" in text for text in out)
    assert tr.last_stats.translated == 6 and tr.last_stats.empty == 2 and tr.last_stats.batches == 2


def test_batching_keeps_input_order(nllb_dir):
    batched = make(nllb_dir, batch_size=4).translate(TEXTS, "en", "id")
    single = make(nllb_dir, batch_size=1).translate(TEXTS, "en", "id")
    assert batched == single
    assert len({t for t in batched if t.strip()}) > 2  # the check is not vacuous


def test_nllb_fallback_warns_and_can_be_refused(nllb_dir, caplog):
    tr = make(nllb_dir)
    spy = Spy(tr)
    with caplog.at_level(logging.WARNING, logger="flare.translation"):
        tr.translate(["hello world"], "en", "madurese")
    assert spy.calls[0]["forced_bos_token_id"] == tr.tokenizer.convert_tokens_to_ids("ind_Latn")
    assert "no Madurese" in caplog.text
    with pytest.raises(ConfigError, match="fallbacks are disallowed"):
        make(nllb_dir, allow_fallback=False).translate(["hello"], "en", "mad")


def test_raw_model_codes_and_unknown_languages(nllb_dir):
    tr = make(nllb_dir)
    spy = Spy(tr)
    tr.translate(["hello world"], "eng_Latn", "zsm_Latn")  # a code outside our table
    assert spy.calls[0]["forced_bos_token_id"] == tr.tokenizer.convert_tokens_to_ids("zsm_Latn")
    with pytest.raises(ConfigError, match="known codes"):
        tr.translate(["hello"], "en", "xx_Nope")


def test_same_language_is_returned_unchanged(nllb_dir):
    tr = make(nllb_dir)
    assert tr.translate(["hello world"], "en", "english") == ["hello world"]
    assert not tr.model_loaded


def test_bad_input(nllb_dir):
    tr = make(nllb_dir)
    with pytest.raises(ConfigError):
        tr.translate("hello", "en", "id")
    with pytest.raises(DataError, match="text 1"):
        tr.translate(["a", None], "en", "id")
    with pytest.raises(ConfigError):
        make(nllb_dir, batch_size=0)


# -- M2M100 -------------------------------------------------------------------------------------


def test_m2m100_language_tokens(m2m100_dir):
    tr = make(m2m100_dir, batch_size=4)
    assert tr.family == "m2m100"
    spy = Spy(tr)
    out = tr.translate(TEXTS, "en", "id")
    assert len(out) == len(TEXTS)
    tok = tr.tokenizer
    for call in spy.calls:
        assert call["forced_bos_token_id"] == tok.get_lang_id("id")
        assert (call["input_ids"][:, 0] == tok.get_lang_id("en")).all()
        assert (call["output"][:, 1] == tok.get_lang_id("id")).all()
    assert not any("__" in text for text in out)  # language tokens are not left in the text
    assert out == make(m2m100_dir, batch_size=1).translate(TEXTS, "en", "id")
    with pytest.raises(ConfigError, match="Telugu"):
        tr.translate(["hello"], "en", "te")


# -- Marian -------------------------------------------------------------------------------------


def test_marian_one_direction(marian_en_id_dir):
    tr = make(marian_en_id_dir, batch_size=4)
    assert tr.family == "marian"
    out = tr.translate(TEXTS, "en", "indonesian")
    assert len(out) == len(TEXTS) and out == make(marian_en_id_dir, batch_size=1).translate(TEXTS, "en", "id")
    with pytest.raises(ConfigError, match="one direction"):
        tr.translate(["halo"], "id", "en")
    with pytest.raises(ConfigError, match="one direction"):
        tr.translate(["hello"], "en", "jv")


def test_marian_multi_target_token(marian_en_mul_dir):
    tr = make(marian_en_mul_dir)
    spy = Spy(tr)
    tr.translate(["hello world", "the cat"], "en", "javanese")
    jav = tr.tokenizer.convert_tokens_to_ids(">>jav<<")
    assert (spy.calls[0]["input_ids"][:, 0] == jav).all()
    tr.translate(["hello world"], "en", "zh")  # script variant >>cmn_Hans<<
    assert spy.calls[1]["input_ids"][0, 0] == tr.tokenizer.convert_tokens_to_ids(">>cmn_Hans<<")
    with pytest.raises(ConfigError, match="target token"):
        tr.translate(["hello"], "en", "fr")
    with pytest.raises(ConfigError, match="one direction"):
        tr.translate(["halo"], "id", "jv")


# -- a model given as objects, and model checks --------------------------------------------------


def test_loaded_model_and_tokenizer(nllb_dir, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(nllb_dir)
    tok = AutoTokenizer.from_pretrained(nllb_dir)
    out = Translator(model, tok, max_new_tokens=6, progress=False).translate(TEXTS, "en", "id")
    assert out == make(nllb_dir).translate(TEXTS, "en", "id")
    explicit = Translator(model, tok, device="cpu", dtype="float32", max_new_tokens=6, progress=False)
    assert explicit.translate(TEXTS, "en", "id") == out
    with pytest.raises(ConfigError, match="dtype"):
        Translator(model, tok, dtype="float8")
    model.name_or_path = ""
    with pytest.raises(ConfigError, match="model_name"):
        Translator(model, tok, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="tokenizer"):
        Translator(model)


def test_not_a_seq2seq_model_and_plain_family(nllb_dir):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    gpt = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=16))
    with pytest.raises(ConfigError, match="encoder-decoder"):
        Translator(gpt, object())
    from tokenizers import Tokenizer, models

    plain = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, "<unk>"))
    )
    assert detect_family(plain) == "plain"


# -- the disk cache -----------------------------------------------------------------------------


def test_second_run_translates_nothing(nllb_dir, tmp_path):
    first = make(nllb_dir, cache_dir=tmp_path, batch_size=2)
    out = first.translate(TEXTS, "en", "id")
    second = make(nllb_dir, cache_dir=tmp_path, batch_size=5)
    assert second.translate(TEXTS, "en", "id") == out
    assert not second.model_loaded  # not even loaded
    assert second.last_stats.cached == 6 and second.last_stats.translated == 0
    files = list(tmp_path.rglob("*.jsonl"))
    assert [f.name for f in files] == ["en-id.jsonl"]
    assert len(files[0].read_text().splitlines()) == 6


def test_killed_run_resumes_and_truncated_cache_is_tolerated(nllb_dir, tmp_path):
    tr = make(nllb_dir, cache_dir=tmp_path, batch_size=2)
    spy = Spy(tr, fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        tr.translate(TEXTS, "en", "id")
    (path,) = tmp_path.rglob("*.jsonl")
    assert len(path.read_text().splitlines()) == 4  # two batches were written before the kill
    data = path.read_bytes()
    path.write_bytes(data[:-9])  # and the second one only half
    again = make(nllb_dir, cache_dir=tmp_path, batch_size=2)
    spy = Spy(again)
    out = again.translate(TEXTS, "en", "id")
    assert spy.rows == 3 and again.last_stats.cached == 3
    assert [json.loads(line)["text"] for line in path.read_text().splitlines()].__len__() == 6
    assert out == make(nllb_dir, batch_size=3).translate(TEXTS, "en", "id")


def test_other_settings_do_not_reuse_entries(nllb_dir, tmp_path):
    make(nllb_dir, cache_dir=tmp_path).translate(TEXTS, "en", "id")
    for kwargs in ({"num_beams": 2}, {"max_new_tokens": 4}, {"max_input_length": 8}):
        tr = make(nllb_dir, cache_dir=tmp_path, **kwargs)
        spy = Spy(tr)
        tr.translate(TEXTS[:2], "en", "id")
        assert spy.rows == 2, kwargs
    tr = make(nllb_dir, cache_dir=tmp_path)
    tr.translate(TEXTS[:2], "en", "jv")  # another direction: another file
    assert tr.last_stats.cached == 0
    assert len(list(tmp_path.rglob("*.jsonl"))) == 2


def test_truncation_is_counted(nllb_dir, caplog):
    tr = make(nllb_dir, max_input_length=4)
    with caplog.at_level(logging.WARNING, logger="flare.translation"):
        tr.translate(TEXTS, "en", "id")
    assert tr.last_stats.truncated >= 3 and "truncated" in caplog.text


def test_marian_direction_from_an_unlisted_language_code(marian_en_id_dir, monkeypatch):
    tr = make(marian_en_id_dir)
    monkeypatch.setattr(tr, "_marian_direction", lambda: ("en", "nl"))  # e.g. opus-mt-en-nl
    with pytest.raises(ConfigError, match="one direction"):
        tr.translate(["hello"], "en", "de")
    assert len(tr.translate(["hello"], "en", "nl")) == 1


def test_missing_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot load"):
        Translator(str(tmp_path / "no-such-model"), progress=False).translate(["hello"], "en", "id")
