"""FLARE-MT: an external encoder's states, projected and fused in every adapted layer."""

import pytest
import torch
from transformers import BertConfig, BertModel, M2M100Config, M2M100ForConditionalGeneration

from flare.core.config import FlareConfig
from flare.core.model import get_flare_model
from flare.errors import FlareError
from flare.sources.encoder import EncoderSource
from flare.testing.memory import mapped_file
from flare.testing.tiny_models import random_batch, tiny_model
from flare.testing.tiny_tokenizer import tiny_tokenizer

TEXTS = ["kami senang sekali", "film ini buruk", "biasa saja menurut saya ya"]


def bert_encoder_source():
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=64, hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=48))
    return EncoderSource(encoder, tiny_tokenizer(TEXTS))


def test_encoder_source_is_batched_and_padded():
    source = bert_encoder_source()
    states, mask = source(TEXTS)
    assert states.shape == (3, 5, 24) and mask.sum(1).tolist() == [3, 3, 5]
    assert not states.requires_grad
    single, _ = source(TEXTS[:1])
    torch.testing.assert_close(single[0], states[0, :3], rtol=1e-5, atol=1e-5)


def test_flare_mt_trains_projection_and_adapter():
    source = bert_encoder_source()
    model = get_flare_model(tiny_model("bert"), FlareConfig(source_kind="encoder", source_encoder_dim=source.hidden_size,
                                                            modules_to_save=[], init_seed=0))
    states, mask = source(TEXTS[:2])
    batch = random_batch("bert")
    optimizer = torch.optim.Adam(model.trainable_parameters().values(), lr=5e-2)
    initial_projection = model.source_projection.weight.detach().clone()
    losses = []
    for _ in range(10):
        loss = model(**batch, source_encoder_states=states, source_attention_mask=mask).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.02
    assert any("source_projection" in n for n in model.adapter_parameter_names)
    assert not torch.allclose(model.source_projection.weight, initial_projection)  # the projection trains
    with pytest.raises(FlareError, match="pass source_encoder_states"):
        model(**batch, source_input_ids=batch["input_ids"])


def test_translation_encoder_gets_the_target_language_tag():
    class TaggingTokenizer:
        """Records the language tag in force when it is called."""

        src_lang = "eng_Latn"
        lang_code_to_id = {"eng_Latn": 4, "jav_Latn": 5}

        def get_lang_id(self, code):
            return self.lang_code_to_id[code]

        def __call__(self, texts, **kwargs):
            self.seen = self.src_lang
            ids = torch.full((len(texts), 3), self.lang_code_to_id[self.src_lang])
            return _Batch(input_ids=ids, attention_mask=torch.ones_like(ids))

    class _Batch(dict):
        def to(self, device):
            return self

    torch.manual_seed(0)
    m2m = M2M100ForConditionalGeneration(M2M100Config(vocab_size=16, d_model=16, encoder_layers=1, decoder_layers=1,
                                                      encoder_attention_heads=2, decoder_attention_heads=2,
                                                      encoder_ffn_dim=32, decoder_ffn_dim=32))
    tokenizer = TaggingTokenizer()
    source = EncoderSource(m2m.get_encoder(), tokenizer, language="javanese", family="nllb")
    states, _ = source(["aku seneng"])
    assert tokenizer.seen == "jav_Latn" and states.shape == (1, 3, 16)


def test_encoder_states_are_computed_once_in_half_precision_with_a_size_estimate():
    from flare.errors import DataError
    from flare.sources.encoder import add_encoder_states
    from flare.tasks.examples import ClassificationExample

    source = bert_encoder_source()
    examples = [ClassificationExample(str(i), (text,), 0) for i, text in enumerate(TEXTS)]
    features = [{"example_index": i} for i in range(len(examples))]
    messages = []
    add_encoder_states(features, examples, source, log=messages.append)
    assert "encoder-state cache: 3 examples" in messages[0]
    expected, mask = source(TEXTS)
    for i, feature in enumerate(features):
        assert feature["source_encoder_states"].dtype == torch.float16
        torch.testing.assert_close(feature["source_encoder_states"].float(), expected[i, mask[i].bool()],
                                   rtol=1e-2, atol=1e-2)
    with pytest.raises(DataError, match="over the limit"):
        add_encoder_states(features, examples, source, limit_bytes=10, log=lambda m: None)


def test_encoder_states_disk_cache_is_reused_and_invalidated(tmp_path):
    from flare.sources.encoder import add_encoder_states
    from flare.tasks.examples import ClassificationExample

    def run(source, texts=TEXTS):
        examples = [ClassificationExample(str(i), (text,), 0) for i, text in enumerate(texts)]
        features = [{"example_index": i} for i in range(len(examples))]
        messages = []
        add_encoder_states(features, examples, source, log=messages.append, cache_dir=tmp_path)
        return features, messages

    source = bert_encoder_source()
    first, messages = run(source)
    assert any("written" in m for m in messages) and len(list(tmp_path.iterdir())) == 1
    where = mapped_file(first[0]["source_encoder_states"])  # the writing run reads the entry too
    assert where is None or (where.startswith(str(tmp_path)) and where.endswith(".npy"))
    again, messages = run(source)
    assert any("reusing" in m for m in messages)
    for a, b in zip(first, again):
        assert torch.equal(a["source_encoder_states"], b["source_encoder_states"])
    # other texts, another encoder (other weights) or another language tag: new entries
    run(source, TEXTS[:2])
    other = bert_encoder_source()
    with torch.no_grad():
        other.encoder.embeddings.word_embeddings.weight.add_(0.01)
    run(other)
    tagged = bert_encoder_source()
    tagged.language_code = "jav_Latn"
    run(tagged)
    assert len(list(tmp_path.iterdir())) == 4
    with torch.autocast("cpu", dtype=torch.bfloat16):  # computed in another precision: a new entry
        _, messages = run(source)
    assert any("written" in m for m in messages) and len(list(tmp_path.iterdir())) == 5
