"""Property-based tests of the collator and of turning arbitrary text into features."""

import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flare.pipeline.data import Collator, collate_source_states

ids = st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=60)


@given(st.lists(st.tuples(ids, ids, st.integers(0, 2)), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_collator_keeps_every_token_and_masks_exactly_the_padding(rows):
    features = [{"id": str(i), "input_ids": a, "labels": label, "source_input_ids": b}
                for i, (a, b, label) in enumerate(rows)]
    batch = Collator(pad_id=7)(features)
    for i, (a, b, label) in enumerate(rows):
        assert batch["attention_mask"][i].sum() == len(a)
        assert batch["input_ids"][i, : len(a)].tolist() == a
        assert (batch["input_ids"][i, len(a):] == 7).all()
        assert batch["source_input_ids"][i, : len(b)].tolist() == b
        assert batch["source_attention_mask"][i].sum() == len(b)
        assert batch["labels"][i] == label


@given(st.lists(st.tuples(ids, st.integers(1, 30)), min_size=1, max_size=6))
@settings(max_examples=40, deadline=None)
def test_token_labels_pad_with_ignore_index_and_cached_states_keep_sharing(rows):
    features = []
    for i, (a, length) in enumerate(rows):
        shared = torch.full((length, 4), float(i))
        features.append({"id": str(i), "input_ids": a, "labels": a, "source_states": {"q": shared, "v": shared,
                                                                                       "final": shared + 1}})
    batch = Collator(pad_id=0)(features)
    for i, (a, length) in enumerate(rows):
        assert batch["labels"][i, : len(a)].tolist() == a and (batch["labels"][i, len(a):] == -100).all()
    states = batch["source_states"]
    assert states.states["q"] is states.states["v"] and states.states["final"] is not states.states["q"]
    assert states.attention_mask.sum(1).tolist() == [length for _, length in rows]
    assert collate_source_states([f["source_states"] for f in features]).states["q"].shape[1] == max(
        length for _, length in rows)


@given(st.text(min_size=1, max_size=400), st.text(min_size=1, max_size=400))
@example(" \n\t", "fine")
@example("negative " * 300, "\u00a0positive\u2028")
@settings(max_examples=60, deadline=None)
def test_any_text_becomes_bounded_features_or_a_clear_error(tiny_checkpoints, target, english):
    from flare.errors import DataError
    from flare.pipeline.data import build_features
    from flare.tasks.examples import ClassificationExample

    head = _head(tiny_checkpoints["bert"])
    example = ClassificationExample("1", (target,), 2, (english,))
    for method in ("lora", "flare", "translate-test", "input-fusion"):
        try:
            (feature,) = build_features([example], head, method)
        except DataError as err:  # the tiny word-level tokenizer gives whitespace no token
            assert "gives no tokens" in str(err) and "'1'" in str(err)
            assert not (head.tokenizer(target)["input_ids"] and head.tokenizer(english)["input_ids"])
            continue
        limit = 2 * head.max_length if method == "input-fusion" else head.max_length
        assert 0 < len(feature["input_ids"]) <= limit
        if method == "flare":
            assert 0 < len(feature["source_input_ids"]) <= head.max_length


_HEADS = {}


def _head(path):
    from flare.heads.classification import ClassificationHead

    if path not in _HEADS:
        _HEADS[path] = ClassificationHead.create(path, "nusax", ("negative", "neutral", "positive"), 16)
    return _HEADS[path]
