"""The causal-LM translator on a tiny random Llama (built offline from a config)."""

import pytest

from causal_testdata import SENTENCES, causal_tokenizer, save_causal_lm
from flare.errors import ConfigError
from flare.translation import Translator
from flare.translation.causal import CausalLMTranslator, is_causal_lm, make_translator

PAIRS = list(zip(SENTENCES[5:10], SENTENCES[0:5]))  # (Indonesian, English)
EXAMPLES = {("id", "en"): PAIRS}


@pytest.fixture(scope="module")
def newline_lm(tmp_path_factory):
    """A tiny LM whose line-break token is likely enough that some outputs hold one after a few words."""
    return save_causal_lm(tmp_path_factory.mktemp("newline-lm"), causal_tokenizer(), newline_boost=1.5)


def _translator(path, **kwargs):
    kwargs = {"examples": EXAMPLES, "max_new_tokens": 12, "progress": False, **kwargs}
    return CausalLMTranslator(str(path), **kwargs)


def test_kind_is_read_from_the_config(causal_lm_dir, nllb_dir):
    assert is_causal_lm(causal_lm_dir) and not is_causal_lm(nllb_dir)
    assert type(make_translator(str(causal_lm_dir), examples=EXAMPLES)) is CausalLMTranslator
    assert type(make_translator(str(nllb_dir), examples=EXAMPLES, shots=2)) is Translator
    assert type(make_translator(str(nllb_dir), "causal-lm")) is CausalLMTranslator  # forced
    with pytest.raises(ConfigError, match="auto, seq2seq or causal-lm"):
        make_translator(str(causal_lm_dir), "decoder")


def test_default_prompt_has_the_language_names_and_k_example_pairs(causal_lm_dir):
    tr = _translator(causal_lm_dir, shots=3)
    prompt = tr.prompt("selamat pagi", "indonesian", "english")
    lines = prompt.split("\n")
    assert lines[0] == "Translate the following sentences from Indonesian into English."
    assert prompt.endswith("\nIndonesian: selamat pagi\nEnglish:")
    shots = [line.removeprefix("Indonesian: ") for line in lines if line.startswith("Indonesian: ")][:-1]
    assert len(shots) == 3 and all(s in dict(PAIRS) for s in shots)
    for source in shots:  # each example is followed by its own English side
        assert f"Indonesian: {source}\nEnglish: {dict(PAIRS)[source]}\n" in prompt


def test_a_text_never_sees_itself_among_the_examples(causal_lm_dir):
    tr = _translator(causal_lm_dir, shots=3)
    drawn = tr.candidates("id", "en")
    assert len(drawn) == 4  # shots + one spare
    for source, target in drawn:
        prompt = tr.prompt(source, "id", "en")
        assert target not in prompt  # its answer is not in its prompt
        assert prompt.count("\nIndonesian: ") == 4  # three examples and the text
    assert _translator(causal_lm_dir, shots=3, seed=1).candidates("id", "en") != drawn  # seeded


def test_user_template(causal_lm_dir):
    tr = _translator(causal_lm_dir, template="{examples}<{source_language}> {text} <{target_language}> {x}", shots=1)
    prompt = tr.prompt("selamat pagi", "id", "en")
    assert prompt.endswith("<Indonesian> selamat pagi <English> {x}")  # other braces stay
    assert prompt.startswith("Indonesian: ") and prompt.count("\nEnglish: ") == 1
    zero_shot = _translator(causal_lm_dir, template="{source_language} to {target_language}: {text} =")
    assert zero_shot.prompt("a b", "jv", "de") == "Javanese to German: a b ="
    with pytest.raises(ConfigError, match=r"\{text\}"):
        _translator(causal_lm_dir, template="translate this")


@pytest.mark.parametrize("family", ["llama", "gemma3"])  # gemma3: sliding-window layers (16 tokens here)
def test_batches_give_the_same_output_as_one_at_a_time(family, tmp_path):
    """Left padding, and the shared-prefix KV cache (padding between the examples and the text)."""
    folder = save_causal_lm(tmp_path, causal_tokenizer(), family=family)
    single = _translator(folder, batch_size=1, reuse_prefix=False).translate(SENTENCES, "id", "en")
    for reuse in (False, True):
        batched = _translator(folder, batch_size=5, reuse_prefix=reuse)
        assert batched.translate(SENTENCES, "id", "en") == single
        assert batched.last_stats.batches == 3
    lengths = {len(batched.tokenizer(batched.prompt(t, "id", "en"))["input_ids"]) for t in SENTENCES}
    assert len(lengths) > 1  # the batches really were padded
    assert batched._prefix_cache is not None and len(batched._prefix_cache[0]) > 20  # the examples were reused
    assert len(set(single)) > 1  # and the outputs depend on the input


def test_output_is_cut_at_the_first_line_break(newline_lm):
    import torch

    tr = _translator(newline_lm, batch_size=4)
    out = tr.translate(SENTENCES, "id", "en")
    assert tr.tokenizer.convert_tokens_to_ids("\n") in tr.stop_token_ids()
    raw = []  # what the model writes when a line break does not stop it
    for text in SENTENCES:
        encoded = tr.tokenizer([tr.prompt(text, "id", "en")], return_tensors="pt")
        with torch.inference_mode():
            ids = tr.model.generate(**encoded, max_new_tokens=12, do_sample=False, eos_token_id=2, pad_token_id=0)
        raw.append(tr.tokenizer.decode(ids[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True))
    cut = [r.split("\n", 1)[0].strip() for r in raw]
    assert out == cut
    assert any("\n" in r and c for r, c in zip(raw, cut))  # some outputs were cut after a few words
    assert any("\n" not in r for r in raw)  # and some had no line break at all


def test_second_run_comes_from_the_cache_without_loading_the_model(causal_lm_dir, tmp_path):
    first = _translator(causal_lm_dir, cache_dir=tmp_path, model_name="tiny-lm")
    out = first.translate(SENTENCES + SENTENCES[:2], "id", "en")
    assert first.last_stats.translated == len(SENTENCES)
    second = _translator(causal_lm_dir, cache_dir=tmp_path, model_name="tiny-lm")
    assert second.translate(SENTENCES, "id", "en") == out[: len(SENTENCES)]
    assert second.last_stats.cached == len(SENTENCES) and second.last_stats.translated == 0
    assert not second.model_loaded
    other_examples = _translator(causal_lm_dir, cache_dir=tmp_path, model_name="tiny-lm", shots=2)
    other_examples.translate(SENTENCES[:3], "id", "en")  # another prompt: not reused
    assert other_examples.last_stats.translated == 3


def test_no_examples_is_a_zero_shot_prompt_with_a_warning(causal_lm_dir, caplog):
    tr = CausalLMTranslator(str(causal_lm_dir), progress=False)
    with caplog.at_level("WARNING"):
        prompt = tr.prompt("x", "id", "en")
    assert prompt == "Translate the following sentences from Indonesian into English.\n\nIndonesian: x\nEnglish:"
    assert "usable example pairs" in caplog.text


def test_a_seq2seq_model_is_refused_as_causal(nllb_dir):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(nllb_dir)
    with pytest.raises(ConfigError, match="encoder-decoder"):
        CausalLMTranslator(model, AutoTokenizer.from_pretrained(nllb_dir))


def test_the_model_gets_the_lm_head_guard(causal_lm_dir):
    """The last prompt position reaches the LM head contiguous (flare.core.lm_head; tests/core/test_lm_head.py)."""
    from flare.core.lm_head import _HOOKED

    assert getattr(_translator(causal_lm_dir).model.get_output_embeddings(), _HOOKED, False)
