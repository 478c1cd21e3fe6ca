"""Stage 2 in the pipeline: the MT-English switch (translation.mode: mt-english), a causal LM as
the translation model, and the translation quality in quality.json, the result files and the report."""

import json

import pytest

from causal_testdata import causal_tokenizer, save_causal_lm
from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment

FAST = ["stage1.epochs=1", "stage1.max_train_examples=16", "stage1.max_eval_examples=16", "train.epochs=1",
        "train.max_train_examples=16", "train.batch_size=8", "stage1.batch_size=8", "train.max_length=48",
        "seeds=[1]", "languages=[jav]"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from flare.testing.tiny_models import tiny_model
    from flare.testing.tiny_tokenizer import tiny_tokenizer

    folder = tmp_path_factory.mktemp("bert")
    tiny_model("bert").save_pretrained(folder)
    tiny_tokenizer(["negative neutral positive the a is of and to in it"]).save_pretrained(folder)
    return str(folder)


class _MarkingTranslator:
    """Stands in for an MT model: marks each text with its direction."""

    def __init__(self):
        self.calls = []

    def translate(self, texts, src, tgt):
        self.calls.append((src, tgt, len(texts)))
        return [f"[{src}->{tgt}] {t}" for t in texts]


def _config(tmp_path, model, *overrides):
    return load_config(None, [f"model={model}", f"output_dir={tmp_path / 'run'}", *FAST, *overrides])


def test_mt_english_replaces_exactly_the_english_side(tmp_path, tiny_bert, monkeypatch):
    translator = _MarkingTranslator()
    monkeypatch.setattr(Experiment, "translator", property(lambda self: translator))
    experiment = Experiment(_config(tmp_path, tiny_bert, "translation.model=stand-in-mt",
                                    "translation.mode=mt-english", "methods=[translate-test]"))
    root = experiment.data_root.path
    for split in ("validation", "test"):
        human = experiment.task.load("jav", split, root)
        machine = experiment.load("jav", split)
        assert [(e.id, e.texts, e.label) for e in machine] == [(e.id, e.texts, e.label) for e in human]
        assert [e.english for e in machine] == [tuple(f"[jav->eng] {t}" for t in e.texts) for e in human]
    assert experiment.load("jav", "train") == experiment.task.load("jav", "train", root)  # human
    assert all(src == "jav" and tgt == "eng" for src, tgt, _ in translator.calls)

    experiment.run()
    result = json.loads((tmp_path / "run" / "results" / "translate-test" / "jav" / "seed-1.json").read_text())
    record = result["translation"]
    assert record["model"] == "stand-in-mt" and record["mode"] == "mt-english"
    assert record["machine"] == {"train": None, "validation": "english", "test": "english"}
    assert "machine translation of the target text (stand-in-mt)" in result["english_side"]
    # the chrF of the test side, against the human English, as sacrebleu computes it
    from sacrebleu.metrics import CHRF

    human = experiment.task.load("jav", "test", root)
    expected = CHRF().corpus_score([f"[jav->eng] {e.text}" for e in human], [[e.english[0] for e in human]]).score
    assert record["chrf"]["test"] == pytest.approx(expected, abs=1e-3)
    rows = json.loads((tmp_path / "run" / "translations" / "quality.json").read_text())["rows"]
    test_row = next(r for r in rows if r["split"] == "test")
    assert (test_row["src"], test_row["tgt"], test_row["segments"]) == ("jav", "eng", 400)
    from flare.results.report import build_report

    report = build_report(tmp_path / "run").markdown_document()
    assert "## Translation quality" in report and f"{expected:.1f}" in report


def test_mt_train_replaces_the_target_training_text_with_mt_of_the_english(tmp_path, tiny_bert, monkeypatch):
    translator = _MarkingTranslator()
    monkeypatch.setattr(Experiment, "translator", property(lambda self: translator))
    experiment = Experiment(_config(tmp_path, tiny_bert, "translation.model=stand-in-mt",
                                    "translation.mode=mt-english", "translation.mt_train=true"))
    human = experiment.task.load("jav", "train", experiment.data_root.path)
    train = experiment.load("jav", "train")
    assert [e.texts for e in train] == [tuple(f"[eng->jav] {t}" for t in e.english) for e in human]
    assert [(e.id, e.english, e.label) for e in train] == [(e.id, e.english, e.label) for e in human]
    assert experiment.translation_record("jav")["machine"] == {"train": "target", "validation": "english",
                                                               "test": "english"}
    assert "jav" in experiment._quality[("jav", "train")]["tgt"]


def test_paper_mode_is_unchanged(tmp_path, tiny_bert, monkeypatch):
    translator = _MarkingTranslator()
    monkeypatch.setattr(Experiment, "translator", property(lambda self: translator))
    experiment = Experiment(_config(tmp_path, tiny_bert, "translation.model=stand-in-mt"))
    assert experiment.translation_record("jav")["machine"] == {"train": "target", "validation": "target",
                                                               "test": "english"}
    validation = experiment.load("jav", "validation")
    assert all(e.texts[0].startswith("[eng->jav] ") and not e.english[0].startswith("[") for e in validation)
    # scored against the human Javanese validation text of the same ids
    assert experiment._quality[("jav", "validation")]["segments"] == len(validation)


def test_bad_translation_settings_fail_when_the_config_is_read(tmp_path, tiny_bert):
    from flare.errors import ConfigError

    for bad, message in (("translation.mode=both", "paper or mt-english"), ("translation.kind=gpt", "causal-lm"),
                         ("translation.mt_train=true", "mt_train only applies"),
                         ("translation.prompt=hello", "must contain {text}")):
        with pytest.raises(ConfigError, match=message):
            _config(tmp_path, tiny_bert, bad)


def test_a_causal_lm_translates_through_the_pipeline(tmp_path, tiny_bert):
    from flare.translation.causal import CausalLMTranslator

    lm = save_causal_lm(tmp_path / "lm", causal_tokenizer())
    config = _config(tmp_path, tiny_bert, f"translation.model={lm}", "translation.mode=mt-english",
                     "translation.max_length=6", "translation.shots=2", "translation.batch_size=3")
    experiment = Experiment(config)
    test = experiment.load("jav", "test", limit=5)
    translator = experiment.translator
    assert isinstance(translator, CausalLMTranslator) and translator.last_stats.translated == 5
    assert experiment.translation_record("jav")["kind"] == "causal-lm"  # detected from the config
    assert all(isinstance(e.english[0], str) and e.english[0] != e.texts[0] for e in test)
    # the prompt's examples are human (Javanese, English) pairs of the validation split, never test
    root = experiment.data_root.path
    validation = {(e.text, e.english[0]) for e in experiment.task.load("jav", "validation", root)}
    test_texts = {e.text for e in experiment.task.load("jav", "test", root)}
    assert set(experiment._prompt_examples("jv", "en")) == validation
    assert set(experiment._prompt_examples("en", "jv")) == {(e, t) for t, e in validation}  # into the target
    drawn = translator.candidates("jv", "en")
    assert len(drawn) == 3 and set(drawn) <= validation and not {s for s, _ in drawn} & test_texts
    prompt = translator.prompt(test[0].text, "jav", "eng")
    assert prompt.startswith("Translate the following sentences from Javanese into English.")
    assert sum(f"Javanese: {s}\nEnglish: {t}\n" in prompt for s, t in drawn) == 2
    # a second experiment finds every translation in the cache and loads no model
    again = Experiment(config)
    assert [e.english for e in again.load("jav", "test", limit=5)] == [e.english for e in test]
    assert again.translator.last_stats.cached == 5 and not again.translator.model_loaded
    assert again._quality[("jav", "test")]["segments"] == 5


CITIES = ["berlin", "paris", "rome", "madrid", "oslo", "vienna", "lisbon", "prague", "dublin", "athens",
          "bern", "riga"]


@pytest.fixture(scope="module")
def xquad_root(tmp_path_factory):
    """A small synthetic XQuAD (en, de) with gold answers: one paragraph per city, two questions."""
    root = tmp_path_factory.mktemp("xquad-data")
    (root / "xquad").mkdir()
    words = {"en": ("the cat lives in {c} . it likes fish .", "where does the cat live ?", "what does it like ?",
                    "fish"),
             "de": ("die katze wohnt in {c} . sie mag fisch .", "wo wohnt die katze ?", "was mag sie ?", "fisch")}
    for language, (context, q_where, q_what, food) in words.items():
        articles = []
        for i, city in enumerate(CITIES):
            text = context.format(c=city)
            qas = [{"id": f"q{i}-where", "question": q_where,
                    "answers": [{"text": city, "answer_start": text.index(city)}]},
                   {"id": f"q{i}-what", "question": q_what,
                    "answers": [{"text": food, "answer_start": text.index(food)}]}]
            articles.append({"title": city, "paragraphs": [{"context": text, "qas": qas}]})
        (root / "xquad" / f"xquad.{language}.json").write_text(json.dumps({"version": "1.1", "data": articles}))
    return root


def test_mt_english_for_extractive_qa_carries_the_answers(tmp_path, tiny_bert, xquad_root):
    class Upper:  # a 'translation' that keeps the quote markers where they are
        def translate(self, texts, src, tgt):
            return [t.upper() for t in texts]

    experiment = Experiment(load_config(None, [
        "task=xquad", "languages=[de]", f"data_dir={xquad_root}", f"model={tiny_bert}",
        f"output_dir={tmp_path / 'run'}", "translation.model=stand-in-mt", "translation.mode=mt-english"]))
    experiment._translator = Upper()
    task, root = experiment.task, experiment.data_root.path
    for split in ("validation", "test"):
        human = task.load("de", split, root)
        machine = experiment.load("de", split)
        assert machine and all(e.english.english is None for e in machine)
        assert [(e.id, e.question, e.context, e.answers) for e in machine] == \
            [(e.id, e.question, e.context, e.answers) for e in human]  # the German side is the human one
        for e, h in zip(machine, human):
            assert e.english.question == h.question.upper() and e.english.context == h.context.upper()
            assert e.english.answer_texts == tuple(a.upper() for a in h.answer_texts)  # carried through MT
    assert experiment.load("de", "train") == task.load("de", "train", root)
    assert experiment._quality[("de", "test")]["segments"] == 2 * len(human)


def test_mt_english_needs_the_target_splits(tmp_path, tiny_bert, data_root):
    from flare.errors import ConfigError

    experiment = Experiment(load_config(None, [
        "task=tydiqa", "languages=[sw]", f"model={tiny_bert}", f"output_dir={tmp_path / 'run'}",
        "translation.model=stand-in-mt", "translation.mode=mt-english"]), log=lambda m: None)
    assert experiment.mt_plan("sw", "test") == "english"
    assert experiment.translation_record("sw")["machine"] == {"test": "english"}  # what translate-test records
    with pytest.raises(ConfigError, match="no sw train split"):
        experiment.mt_plan("sw", "train")


def test_flare_translate_prints_and_writes_the_quality_table(tmp_path, tiny_bert, monkeypatch):
    from typer.testing import CliRunner

    from flare.cli.main import app

    monkeypatch.setattr(Experiment, "translator", property(lambda self: _MarkingTranslator()))
    config = tmp_path / "config.yaml"
    config.write_text(f"model: {tiny_bert}\noutput_dir: {tmp_path / 'run'}\nlanguages: [jav]\n"
                      "translation: {model: stand-in-mt, mode: mt-english}\n")
    result = CliRunner().invoke(app, ["translate", str(config)], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "run" / "translations" / "quality.json").read_text())["rows"]
    assert [(r["split"], r["src"], r["tgt"]) for r in rows] == [("test", "jav", "eng"), ("validation", "jav", "eng")]
    assert "validation" in result.output and "chrF" in result.output
    result = CliRunner().invoke(app, ["translate", str(tmp_path / "config.yaml"), "translation.model=null"])
    assert result.exit_code == 2 and "translation.model is not set" in result.output


class _CountingTranslator(_MarkingTranslator):
    """A stand-in MT model that keeps stats as the real ones do: texts seen before come from its cache."""

    def __init__(self):
        super().__init__()
        from flare.translation import TranslationStats

        self.seen: set = set()
        self.total_stats = TranslationStats()

    def translate(self, texts, src, tgt):
        from flare.translation import TranslationStats

        new = set(texts) - self.seen
        self.seen |= new
        self.total_stats = self.total_stats + TranslationStats(
            total=len(texts), unique=len(set(texts)), cached=len(set(texts)) - len(new), translated=len(new),
            batches=1 if new else 0)
        return super().translate(texts, src, tgt)


def test_flare_translate_writes_what_the_translation_cost(tmp_path, tiny_bert, monkeypatch):
    """translations/cost.json: texts translated, wall seconds and the rate of the last `flare translate`
    that translated anything; a later call that finds everything in the cache leaves it alone."""
    from typer.testing import CliRunner

    from flare.cli.main import app

    stub = _CountingTranslator()

    def translator(self):  # one model per experiment, as the real property loads: its own stats
        from flare.translation import TranslationStats

        if self._translator is None:
            stub.total_stats = TranslationStats()
            self._translator = stub
        return stub

    monkeypatch.setattr(Experiment, "translator", property(translator))
    config = tmp_path / "config.yaml"
    config.write_text(f"model: {tiny_bert}\noutput_dir: {tmp_path / 'run'}\nlanguages: [jav]\n"
                      "translation: {model: stand-in-mt, mode: mt-english}\n")
    assert CliRunner().invoke(app, ["translate", str(config)]).exit_code == 0
    path = tmp_path / "run" / "translations" / "cost.json"
    cost = json.loads(path.read_text())
    assert cost["texts_translated"] == len(stub.seen) > 400  # jav validation + test: 500 texts
    assert cost["model"] == "stand-in-mt" and cost["languages"] == ["jav"] and cost["seconds"] > 0
    assert cost["texts_per_second"] == pytest.approx(cost["texts_translated"] / cost["seconds"])
    before = path.read_text()
    assert CliRunner().invoke(app, ["translate", str(config)]).exit_code == 0
    assert stub.total_stats.cached == cost["texts_translated"] and path.read_text() == before
