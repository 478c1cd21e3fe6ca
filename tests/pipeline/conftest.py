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
    for family in ("bert", "llama"):
        folder = tmp_path_factory.mktemp(family)
        model = tiny_model(family)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders[family] = str(folder)
    return folders
