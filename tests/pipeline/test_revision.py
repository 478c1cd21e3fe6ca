"""`revision` (a hub id's branch, tag or commit) reaches the tokenizer, the config and the model."""

import transformers

from flare.pipeline.config import load_config
from flare.pipeline.runner import Experiment


def test_revision_reaches_tokenizer_config_and_model(tmp_path, tiny_checkpoints, monkeypatch):
    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoConfig):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append((klass.__name__, kwargs.get("revision")))
            kwargs.pop("revision", None)  # a local folder has no revisions
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    config = load_config(None, [f"model={tiny_checkpoints['bert']}", f"output_dir={tmp_path}", "revision=v1.2"])
    head = Experiment(config, log=lambda m: None).head
    assert ("AutoTokenizer", "v1.2") in seen and ("AutoConfig", "v1.2") in seen
    assert head.load_options["revision"] == "v1.2"  # the model's from_pretrained gets it too
