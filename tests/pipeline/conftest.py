import pytest

from flare.testing.tiny_models import tiny_model
from flare.testing.tiny_tokenizer import tiny_tokenizer


def _corpus(data_root):
    import csv

    texts = ["negative neutral positive sentiment: label: english:"]
    for language in ("english", "javanese"):
        with open(data_root / "nusax" / language / "train.csv", newline="") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    return texts


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, data_root):
    """Tiny random encoder and decoder checkpoints, saved with a tokenizer, as a user's folder."""
    tokenizer = tiny_tokenizer(_corpus(data_root))
    folders = {}
    # bitsandbytes' CPU 4-bit inference kernels need in-widths of a 64 block, out-widths of 32
    shapes = {"bert": {}, "llama": {}, "mt5": {}, "llama-64": {"hidden_size": 64, "intermediate_size": 128, "head_dim": 16}}
    for name, overrides in shapes.items():
        folder = tmp_path_factory.mktemp(name)
        tiny_model(name.split("-")[0], **overrides).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders[name] = str(folder)
    return folders


# ----------------------------------------------------------------------------- extractive QA
ANIMALS = {"cat": "katze", "dog": "hund", "bird": "vogel", "horse": "pferd", "fish": "fisch",
           "cow": "kuh", "fox": "fuchs", "bear": "bär", "wolf": "wolf", "frog": "frosch"}
CITIES = ["berlin", "paris", "rome", "madrid", "oslo", "vienna", "lisbon", "prague", "dublin", "athens"]
FOODS = {"bread": "brot", "apples": "äpfel", "rice": "reis", "cheese": "käse", "soup": "suppe", "honey": "honig"}
COLOURS = {"red": "rot", "blue": "blau", "green": "grün", "black": "schwarz", "white": "weiß", "yellow": "gelb"}
QA_PARAGRAPHS = 15  # 60/20/20 by paragraph: 9 / 3 / 3 paragraphs, 27 / 9 / 9 questions


def _paragraph(pieces):
    """Context from (text, answer key or None) pieces; answer key -> (text, start)."""
    context, spans = "", {}
    for text, key in pieces:
        if key is not None:
            spans[key] = (text, len(context))
        context += text
    return context, spans


def qa_paragraphs(language: str) -> list[dict]:
    """A SQuAD 1.1 'data' list: QA_PARAGRAPHS one-paragraph articles, 3 questions each, ids
    shared across languages; the German side is a word-by-word translation."""
    animals, foods, colours = list(ANIMALS), list(FOODS), list(COLOURS)
    articles = []
    for i in range(QA_PARAGRAPHS):
        a1, a2 = animals[i % 10], animals[(i + 3) % 10]
        c1, c2 = CITIES[i % 10], CITIES[(i + 5) % 10]
        food, colour = foods[i % 6], colours[i % 6]
        if language == "en":
            context, spans = _paragraph([
                (f"the {a1} lives in ", None), (c1, "where"), (" . it is a sunny day . the " + a2 + " eats ", None),
                (food, "eat"), (f" . the {a1} is ", None), (colour, "colour"),
                (f" . people like the {a2} very much . the {a2} lives in {c2} .", None)])
            questions = {"where": f"where does the {a1} live ?", "eat": f"what does the {a2} eat ?",
                         "colour": f"what colour is the {a1} ?"}
        else:
            d1, d2 = ANIMALS[a1], ANIMALS[a2]
            context, spans = _paragraph([
                (f"der {d1} wohnt in ", None), (c1, "where"),
                (" . es ist ein sonniger tag . der " + d2 + " isst ", None),
                (FOODS[food], "eat"), (f" . der {d1} ist ", None), (COLOURS[colour], "colour"),
                (f" . die leute mögen den {d2} sehr . der {d2} wohnt in {c2} .", None)])
            questions = {"where": f"wo wohnt der {d1} ?", "eat": f"was isst der {d2} ?",
                         "colour": f"welche farbe hat der {d1} ?"}
        qas = [{"id": f"q{i:02d}-{key}", "question": questions[key],
                "answers": [{"text": spans[key][0], "answer_start": spans[key][1]}]}
               for key in ("where", "eat", "colour")]
        articles.append({"title": f"p{i}", "paragraphs": [{"context": context, "qas": qas}]})
    return articles


@pytest.fixture(scope="session")
def qa_data_root(tmp_path_factory):
    """A data root with a small synthetic XQuAD (en, de) that has gold answers."""
    import json

    root = tmp_path_factory.mktemp("qa-data")
    (root / "xquad").mkdir()
    for language in ("en", "de"):
        (root / "xquad" / f"xquad.{language}.json").write_text(
            json.dumps({"version": "1.1", "data": qa_paragraphs(language)}, ensure_ascii=False))
    return root


def qa_tokenizer(pair_template: bool):
    """Word-level tokenizer over the synthetic QA words. Encoders: '<s> A </s> B </s>' (position 0
    is the CLS-like token, pairs carry sequence ids); decoders: '<s> A' (a BOS, as Llama)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from flare.testing.tiny_tokenizer import SPECIAL

    words = []
    for language in ("en", "de"):
        for article in qa_paragraphs(language):
            paragraph = article["paragraphs"][0]
            words += paragraph["context"].split() + [w for q in paragraph["qas"] for w in q["question"].split()]
    words += "context: question: answer: english".split()
    vocab = {token: i for i, token in enumerate(SPECIAL + sorted(set(words)))}
    assert len(vocab) <= 128, len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = [("<s>", 1), ("</s>", 2)]
    if pair_template:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1", special_tokens=specials)
    else:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B:1", special_tokens=specials)
    extra = {"sep_token": "</s>", "cls_token": "<s>"} if pair_template else {}
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", **extra)


@pytest.fixture(scope="session")
def qa_checkpoints(tmp_path_factory):
    """Tiny random BERT (saved without a QA head, as e5) and Llama checkpoints with QA tokenizers."""
    folders = {}
    for family, template in (("bert", True), ("llama", False)):
        folder = tmp_path_factory.mktemp(f"qa-{family}")
        tiny_model(family).save_pretrained(folder)
        qa_tokenizer(template).save_pretrained(folder)
        folders[family] = str(folder)
    return folders
