"""Extractive QA in the pipeline: every method end to end on tiny models and synthetic XQuAD data
(plus one run on the shared XQuAD), and the parts that decide the answers: windows and
their labels, span post-processing, input-level fusion offsets, decoder prompts and answers."""

import json
import logging

import pytest
import torch

from flare.pipeline.config import load_config
from flare.heads import QASettings
from flare.heads.generative_qa import DecoderGenerativeQA, extract_generated_answer
from flare.heads.span_qa import EncoderSpanQA, answer_token_span, best_answer, span_candidates
from flare.results.compare import compare
from flare.results.report import build_report
from flare.pipeline.data import Collator, build_features
from flare.pipeline.runner import Experiment
from flare.tasks import get_task
from flare.tasks.examples import Answer, QAExample

METHODS = ["zero-shot", "translate-test", "lora", "flare", "flare-mt", "input-fusion", "xmixup"]
LENGTH = {"bert": 24, "llama": 40}  # bert: 2-3 windows per context; llama: the context is cut


def qa_config(tmp_path, model, data_root, family, methods, *extra):
    return load_config(None, [
        "task=xquad", "languages=[de]", f"data_dir={data_root}", f"model={model}", f"mt_encoder={model}",
        f"output_dir={tmp_path / 'run'}", f"methods=[{','.join(methods)}]", "seeds=[1]",
        "stage1.epochs=1", "train.epochs=1", "stage1.batch_size=8", "train.batch_size=8",
        f"train.max_length={LENGTH[family]}", "qa.max_new_tokens=4", "threads=2", *extra])


@pytest.fixture(scope="module")
def xquad_de(qa_data_root):
    return {split: get_task("xquad").load("de", split, qa_data_root) for split in ("train", "validation", "test")}


# ----------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("family", ["bert", "llama"])
def test_every_method_answers_questions_and_writes_its_result(tmp_path, qa_checkpoints, qa_data_root, family):
    experiment = Experiment(qa_config(tmp_path, qa_checkpoints[family], qa_data_root, family, METHODS))
    assert len(experiment.run()) == len(METHODS) + 1  # and flare-no-english
    stage1 = json.loads((tmp_path / "run" / "stage1" / "stage1.json").read_text())
    assert set(stage1["test"]) == {"exact_match", "f1"}
    for method in METHODS:
        result = json.loads((tmp_path / "run" / "results" / method / "de" / "seed-1.json").read_text())
        assert result["primary_metric"] == "f1"
        test = result["metrics"]["test"]
        assert set(test) == {"exact_match", "f1"} and all(0 <= v <= 100 for v in test.values())
        predictions = result["predictions"]
        assert len(predictions["predicted"]) == len(predictions["ids"]) == 9
        assert "gold" not in predictions  # the data's own answers: compare reads them from the data
        assert all(isinstance(p, str) for p in predictions["predicted"])
        if method in ("lora", "flare", "flare-mt", "input-fusion", "xmixup"):
            assert set(result["metrics"]["validation"]) == {"exact_match", "f1"}
        if family == "bert":  # a span of the context it read
            test_examples = experiment.load("de", "test")
            contexts = [e.english.context if method == "translate-test" else e.context for e in test_examples]
            assert all(p in c for p, c in zip(predictions["predicted"], contexts))
    for method in [m for m in METHODS if m != "zero-shot"] + ["flare-no-english"]:
        # compare reads each method's gold from the data by id and scores it as the run did (translate-test
        # reads English and is scored against the English partner's answers, the others the German ones)
        result = json.loads((tmp_path / "run" / "results" / method / "de" / "seed-1.json").read_text())
        (comparison,) = compare(tmp_path / "run", method, "zero-shot", resamples=10)
        assert comparison.score_a == pytest.approx(result["metrics"]["test"]["f1"])
    saved = json.loads((tmp_path / "run" / "results" / "flare" / "de" / "seed-1.json").read_text())
    assert experiment.evaluate_saved("flare", "de", 1, "de") == saved["metrics"]["test"]
    report = build_report(tmp_path / "run")
    assert report.metric == "f1" and set(report.methods) == {*METHODS, "flare-no-english"} and not report.warnings


def test_translate_test_gold_is_the_english_answer(tmp_path, qa_checkpoints, qa_data_root, xquad_de):
    experiment = Experiment(qa_config(tmp_path, qa_checkpoints["bert"], qa_data_root, "bert", ["translate-test"]))
    test = xquad_de["test"]
    assert experiment.references(test, "translate-test") == [e.english.answer_texts for e in test]
    assert experiment.references(test, "lora") == [e.answer_texts for e in test]
    assert experiment.primary_metric == "f1"


def test_blanked_test_answers_are_refused_clearly(tmp_path, qa_checkpoints, qa_data_root):
    from flare.errors import DataError
    from flare.tasks.examples import QAExample

    experiment = Experiment(qa_config(tmp_path, qa_checkpoints["bert"], qa_data_root, "bert", ["zero-shot"]))
    blank = [QAExample("x", "where ?", "somewhere", ())]
    with pytest.raises(DataError, match="no gold answers"):
        experiment._require_answers(blank, "de/test")


def test_shared_xquad_trains_and_scores(tmp_path, qa_checkpoints, data_root):
    """The shared XQuAD carries its gold answers: stage 1 and a LoRA run train on it and the
    target test split (250 German questions) is scored against the real answers."""
    config = qa_config(tmp_path, qa_checkpoints["bert"], data_root, "bert", ["lora"],
                       "stage1.max_train_examples=16", "stage1.max_eval_examples=16",
                       "train.max_train_examples=16", "train.max_eval_examples=16")
    [path] = Experiment(config).run()
    result = json.loads(path.read_text())
    assert len(result["predictions"]["predicted"]) == 250 and "gold" not in result["predictions"]
    assert set(result["metrics"]["test"]) == {"exact_match", "f1"}
    assert json.loads((tmp_path / "run" / "stage1" / "stage1.json").read_text())["test"] is not None


def test_machine_translated_qa_keeps_the_projected_answers(tmp_path, qa_checkpoints, qa_data_root, xquad_de):
    """translation.model set: English train -> target, target test -> English, answers carried
    through the quote markers (an identity 'translator' keeps them where they are)."""

    class Identity:
        def translate(self, texts, src, tgt):
            return list(texts)

    config = qa_config(tmp_path, qa_checkpoints["bert"], qa_data_root, "bert", ["lora"], "translation.model=fake-mt")
    experiment = Experiment(config)
    experiment._translator = Identity()
    train = experiment.load("de", "train")
    assert train and all(e.english is not None and e.english.english is None for e in train)
    assert all(e.context[e.answers[0].start:e.answers[0].end] == e.answers[0].text for e in train)
    assert train[0].question == train[0].english.question  # 'translated' from the English original
    test = experiment.load("de", "test")
    assert [e.id for e in test] == [e.id for e in xquad_de["test"]]
    assert [e.english.answer_texts for e in test] == [e.answer_texts for e in xquad_de["test"]]


def test_a_machine_made_gold_is_stored_and_the_data_gold_read_again(tmp_path, qa_checkpoints, qa_data_root):
    """A result file holds no copy of the data's answers, except where a machine made the gold:
    translate-test under machine translation is scored against the English answers projected
    through MT, so its file stores them; `flare compare` scores both methods as the runs did."""

    class Upper:  # a 'translation' that keeps the quote markers where they are
        def translate(self, texts, src, tgt):
            return [t.upper() for t in texts]

    config = qa_config(tmp_path, qa_checkpoints["bert"], qa_data_root, "bert", ["zero-shot", "translate-test"],
                       "translation.model=stand-in-mt", "translation.mode=mt-english")
    experiment = Experiment(config, log=lambda m: None)
    experiment._translator = Upper()
    results = {json.loads(p.read_text())["method"]: json.loads(p.read_text()) for p in experiment.run()}
    assert "gold" not in results["zero-shot"]["predictions"]
    german = get_task("xquad").load("de", "test", qa_data_root)
    assert results["translate-test"]["predictions"]["gold"] == [[a.upper() for a in e.answer_texts] for e in german]
    (comparison,) = compare(tmp_path / "run", "translate-test", "zero-shot", resamples=10, data_dir=qa_data_root)
    assert comparison.score_a == pytest.approx(results["translate-test"]["metrics"]["test"]["f1"])
    assert comparison.score_b == pytest.approx(results["zero-shot"]["metrics"]["test"]["f1"])


def test_tydiqa_english_stage1_runs_on_the_shared_data(tmp_path, qa_checkpoints, data_root):
    """TyDiQA: English train/validation come from the train file; the English dev file (stage 1's
    test split) carries its gold answers in the shared data, so stage 1 is scored on it."""
    config = load_config(None, [
        "task=tydiqa", "languages=[sw]", f"data_dir={data_root}", f"model={qa_checkpoints['bert']}",
        f"output_dir={tmp_path / 'run'}", "methods=[zero-shot]", "stage1.epochs=1", "stage1.max_train_examples=6",
        "stage1.max_eval_examples=4", "stage1.batch_size=8", "train.max_length=64", "threads=2"])
    experiment = Experiment(config, log=lambda m: None)
    experiment.stage1()
    stage1 = json.loads((tmp_path / "run" / "stage1" / "stage1.json").read_text())
    assert set(stage1["test"]) == {"exact_match", "f1"} and stage1["history"][0]["validation"] >= 0


def test_a_qa_stage1_model_is_borrowed_from_another_experiment(tmp_path, qa_checkpoints, qa_data_root, data_root):
    """stage1_from: TyDiQA zero-shot on the stage-1 model an XQuAD experiment trained, read from that
    experiment's folder, never retrained or copied; a missing or unfit model is refused clearly."""
    from flare.errors import ConfigError

    lender = Experiment(qa_config(tmp_path / "xquad", qa_checkpoints["bert"], qa_data_root, "bert", ["zero-shot"]),
                        log=lambda m: None)
    folder = lender.stage1()
    weights = folder / "adapter_model.safetensors"
    made = weights.stat().st_mtime_ns

    def borrower(lent_from, log=lambda m: None):
        return Experiment(load_config(None, [
            "task=tydiqa", "languages=[sw]", f"data_dir={data_root}", f"model={qa_checkpoints['bert']}",
            f"output_dir={tmp_path / 'tydiqa'}", "methods=[zero-shot]", "train.max_length=64",
            f"stage1_from={lent_from}", "threads=2"]), log=log)

    [path] = borrower(tmp_path / "xquad" / "run").run()
    result = json.loads(path.read_text())
    assert (tmp_path / "tydiqa" / "results" / "zero-shot" / "sw" / "seed-1.json") == path
    assert (tmp_path / "tydiqa" / result["stage1"]["dir"]).resolve() == folder.resolve()
    assert not (tmp_path / "tydiqa" / "stage1").exists() and weights.stat().st_mtime_ns == made
    assert set(result["metrics"]["test"]) == {"exact_match", "f1"} and len(result["predictions"]["predicted"]) > 100
    assert result["english_side"] == "none (no method reads an English partner)"  # TyDiQA is not parallel

    with pytest.raises(ConfigError, match="holds no stage-1 model.*flare finetune"):
        borrower(tmp_path / "nowhere").stage1()
    marker = json.loads((folder / "stage1.json").read_text())
    for key, value, message in (("model", "someone/else", "was trained on model"),
                                ("task", "nusax", "only QA tasks can share")):
        (folder / "stage1.json").write_text(json.dumps({**marker, key: value}))
        with pytest.raises(ConfigError, match=message):
            borrower(tmp_path / "xquad" / "run").stage1()
    (folder / "stage1.json").write_text(json.dumps({**marker, "task": "tydiqa"}))
    assert borrower(tmp_path / "xquad" / "run").stage1() == folder  # two QA tasks share span heads
    assert marker["precision"] == "no"
    logged: list[str] = []
    (folder / "stage1.json").write_text(json.dumps({**marker, "precision": "bf16"}))
    borrower(tmp_path / "xquad" / "run", logged.append).stage1()
    assert any("trained with precision 'bf16', this config evaluates with 'no'" in m for m in logged)


# ----------------------------------------------------------------------------- encoder spans
def test_answer_labels_point_at_the_answer_or_the_first_position():
    # tokens: <s> q q </s> c0 c1 c2 </s>; context characters: c0 [0,4) c1 [5,9) c2 [10,14)
    offsets = [(0, 0), (0, 3), (4, 6), (0, 0), (0, 4), (5, 9), (10, 14), (0, 0)]
    sequence_ids = [None, 0, 0, None, 1, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 5, 14) == (5, 6)
    assert answer_token_span(offsets, sequence_ids, 0, 4) == (4, 4)
    assert answer_token_span(offsets, sequence_ids, 12, 20) == (0, 0)  # runs past the window
    assert answer_token_span(offsets, sequence_ids[:5] + [None, None, None], 5, 9) == (0, 0)


def test_the_best_span_over_windows_wins_and_never_lies_outside_the_context():
    context = "aaa bbb ccc ddd eee"
    # window 1 covers aaa bbb ccc, window 2 covers ccc ddd eee; None = question / special tokens
    first = [None, None, (0, 3), (4, 7), (8, 11), None]
    second = [None, None, (8, 11), (12, 15), (16, 19), None]
    huge = 50.0  # on the question and special tokens: must never be chosen
    start1 = torch.tensor([huge, huge, 1.0, 2.0, 0.0, huge])
    end1 = torch.tensor([huge, huge, 0.0, 2.0, 1.0, huge])
    start2 = torch.tensor([huge, huge, 0.0, 3.0, 0.0, huge])
    end2 = torch.tensor([huge, huge, 0.0, 1.0, 4.0, huge])
    c1 = span_candidates(start1, end1, first, max_answer_length=5)
    c2 = span_candidates(start2, end2, second, max_answer_length=5)
    assert c1[0][1:] == (4, 7) and c2[0][1:] == (12, 19)  # bbb (4.0) and "ddd eee" (7.0)
    assert best_answer(context, [c1, c2]) == "ddd eee"
    assert all(s >= 0 and e <= len(context) for c in (c1, c2) for _, s, e in c)
    # start after end is invalid; so is a span longer than max_answer_length
    reverse_start = torch.tensor([0.0, 0.0, 0.0, 0.0, 9.0, 0.0])
    reverse_end = torch.tensor([0.0, 0.0, 9.0, 0.0, 0.0, 0.0])
    assert all(s <= e for _, s, e in span_candidates(reverse_start, reverse_end, first))
    assert best_answer(context, [span_candidates(start2, end2, second, max_answer_length=1)]) == "ddd"
    assert best_answer(context, [[], []]) == ""


@pytest.fixture(scope="module")
def encoder_head(qa_checkpoints):
    return EncoderSpanQA(qa_checkpoints["bert"], max_length=24, settings=QASettings(doc_stride=6))


def test_windows_cover_the_context_and_their_labels_map_back_to_the_answer(encoder_head, xquad_de):
    for example in xquad_de["train"][:6]:
        windows = encoder_head.example_features(example)
        assert len(windows) >= 2 and all(len(w["input_ids"]) <= 24 for w in windows)
        covered = {o for w in windows for o in w["offsets"] if o is not None}
        assert min(o[0] for o in covered) == 0 and max(o[1] for o in covered) == len(example.context)
        hits = [w for w in windows if w["start_positions"] != 0]
        assert hits, "the answer lies wholly inside at least one window"
        for w in hits:
            start, end = w["offsets"][w["start_positions"]], w["offsets"][w["end_positions"]]
            assert example.context[start[0]:end[1]] == example.answers[0].text
        for w in windows:
            if w["start_positions"] == 0:
                assert w["end_positions"] == 0


def test_input_fusion_puts_english_first_and_answers_only_in_the_target_context(encoder_head, xquad_de):
    tokenizer = encoder_head.tokenizer
    for example in xquad_de["train"][:6]:
        windows = encoder_head.example_features(example, side="both")
        assert all(len(w["input_ids"]) <= 48 for w in windows)
        english_question = tokenizer(example.english.question, add_special_tokens=False)["input_ids"]
        target_question = tokenizer(example.question, add_special_tokens=False)["input_ids"]
        for w in windows:
            assert 0 < _find(w["input_ids"], english_question) < _find(w["input_ids"], target_question)
            # every selectable token is a token of the target context, at its own offsets
            context_ids = [i for i, o in zip(w["input_ids"], w["offsets"]) if o is not None]
            assert context_ids == [tokenizer.convert_tokens_to_ids(example.context[s:e])
                                   for s, e in (o for o in w["offsets"] if o is not None)]
            if w["start_positions"]:
                start, end = w["offsets"][w["start_positions"]], w["offsets"][w["end_positions"]]
                assert example.context[start[0]:end[1]] == example.answers[0].text
        assert any(w["start_positions"] for w in windows)


def test_flare_source_is_the_first_english_window_and_xmixup_gets_its_positions(encoder_head, xquad_de):
    from flare.pipeline.data import build_features

    examples = xquad_de["train"][:4]
    flare = build_features(examples, encoder_head, "flare")
    xmixup = build_features(examples, encoder_head, "xmixup")
    assert len(flare) > len(examples)  # windows
    for feature in flare:
        english = examples[feature["example_index"]].english
        assert len(feature["source_input_ids"]) <= 24
        assert feature["source_input_ids"] == encoder_head.source_ids(english)
        assert "source_start_positions" not in feature
    assert all("source_start_positions" in f for f in xmixup)


def _find(ids, part):
    return next(i for i in range(len(ids)) if ids[i:i + len(part)] == part)


def test_xmixup_on_spans_trains_the_source_span_term_too(encoder_head, xquad_de):
    from peft import get_peft_model

    from flare.baselines.xmixup import XMixupModel
    from flare.pipeline import stages
    from flare.pipeline.config import AdapterConfig
    from flare.pipeline.data import Collator, build_features, source_kwargs

    model = XMixupModel(get_peft_model(encoder_head.load_model(), stages.lora_config(AdapterConfig(), encoder_head)))
    model.train()
    batch = Collator(encoder_head.pad_id)(build_features(xquad_de["train"][:4], encoder_head, "xmixup"))
    out = model(**encoder_head.model_inputs(batch), **source_kwargs(batch))
    assert out.source_task_loss is not None and out.target_task_loss is not None and out.loss.requires_grad


# ----------------------------------------------------------------------------- decoders
class _Words:
    """decode() of a tiny fixed vocabulary, for the answer extraction."""

    vocab = {5: "Berlin", 6: "\n", 7: " Paris", 8: " city", 2: "</s>"}

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.vocab[i] for i in ids if not (skip_special_tokens and i == 2))


def test_generated_answers_stop_at_the_end_token_or_the_line_break():
    words = _Words()
    assert extract_generated_answer([5, 8, 2, 7], words, [2]) == "Berlin city"
    assert extract_generated_answer([7, 6, 5, 8], words, [2]) == "Paris"
    assert extract_generated_answer([2, 5], words, [2]) == ""
    assert extract_generated_answer([5, 7], words, [2, 7]) == "Berlin"  # a second stop id (Gemma's end of turn)


def test_decoder_prompt_cuts_the_context_never_the_question_or_cue(qa_checkpoints, xquad_de):
    head = DecoderGenerativeQA(qa_checkpoints["llama"], max_length=20)
    example = xquad_de["train"][0]
    (feature,) = head.example_features(example)
    prompt = [t for t, label in zip(feature["input_ids"], feature["labels"]) if label == -100]
    tokenizer = head.tokenizer
    assert len(prompt) == 20 < len(tokenizer(head.render(example.question, example.context))["input_ids"])
    tail = tokenizer(f"question: {example.question} answer:", add_special_tokens=False)["input_ids"]
    assert prompt[-len(tail):] == tail  # the question and the cue are whole
    assert prompt[:3] == [tokenizer.bos_token_id] + tokenizer("context: der", add_special_tokens=False)["input_ids"]
    answer = [t for t in feature["labels"] if t != -100]
    assert answer == tokenizer(" " + example.answers[0].text, add_special_tokens=False)["input_ids"] + \
        [tokenizer.eos_token_id]
    assert feature["input_ids"] == prompt + answer
    # the source (the English prompt) has no answer and the same budget
    source = head.source_ids(example.english)
    assert len(source) <= 20 and source[-1] == tokenizer.convert_tokens_to_ids("answer:")


def test_an_answer_lost_to_the_prompt_cut_is_flagged_and_counted(qa_checkpoints, caplog):
    """Over-long contexts keep their start: an example whose gold answer lies only in the lost end
    is flagged, and build_features says how many there are (the model cannot read those answers)."""
    context = "Berlin is the capital. " + "It has many old streets and parks. " * 12 + "The river is the Spree."
    early = QAExample("q1", "What is the capital?", context, (Answer("Berlin", 0),))
    late = QAExample("q2", "Which river?", context, (Answer("Spree", context.index("Spree")),))
    short = DecoderGenerativeQA(qa_checkpoints["llama"], max_length=24)
    with caplog.at_level(logging.WARNING, logger="flare.pipeline.data"):
        features = build_features([early, late], short, "lora", "de/test")
    assert [bool(f.get("answer_cut")) for f in features] == [False, True]
    assert "1 of 2 examples (de/test) have every gold answer in the part of the context cut" in caplog.text
    caplog.clear()
    whole = DecoderGenerativeQA(qa_checkpoints["llama"], max_length=512)
    with caplog.at_level(logging.WARNING, logger="flare.pipeline.data"):
        features = build_features([early, late], whole, "lora", "de/test")
    assert not any(f.get("answer_cut") for f in features) and "cut to fit" not in caplog.text
    assert "answer_cut" not in Collator(0)(features)  # a flag for the report, not a model input


def test_bf16_mixed_precision_runs_on_the_cpu(tmp_path, qa_checkpoints, qa_data_root):
    """precision=bf16 (accelerate's mixed precision; on the CPU, torch's autocast): every linear
    layer computes in bfloat16, in stage 1, in FLARE's stage 3 (the cached source states
    included), in validation and test, and in the evaluation of a method that trains nothing
    (zero-shot), while the trained weights stay float32; the files record it. The same run at
    precision "no" computes nothing in bfloat16."""
    from safetensors.torch import load_file

    seen: dict[str, set] = {}

    def record(module, args, output):
        if isinstance(module, torch.nn.Linear) and isinstance(output, torch.Tensor):
            seen.setdefault(run, set()).add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        for run in ("no", "bf16"):
            config = qa_config(tmp_path / run, qa_checkpoints["bert"], qa_data_root, "bert", ["zero-shot", "flare"],
                               f"precision='{run}'", "no_english_rows=false")
            _, path = Experiment(config).run()
    finally:
        handle.remove()
    assert seen["no"] == {torch.float32}
    assert seen["bf16"] == {torch.bfloat16}
    result = json.loads(path.read_text())
    assert result["config"]["precision"] == "bf16" and set(result["metrics"]["test"]) == {"exact_match", "f1"}
    assert json.loads((tmp_path / "bf16" / "run" / "stage1" / "stage1.json").read_text())["precision"] == "bf16"
    adapter = next((tmp_path / "bf16" / "run").rglob("adapters/**/adapter_model.safetensors"))
    assert {t.dtype for t in load_file(adapter).values()} == {torch.float32}
