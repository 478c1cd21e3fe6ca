"""Shared by the decoder bench scripts of this folder (imported as a sibling module: run them as
`python studies/bench/<script>.py` from the repository root)."""

from flare.heads.base import BaseHead, CausalLMHead


class LossOnly(CausalLMHead, BaseHead):
    """The decoder head's answer-position loss, without a tokenizer (the scripts make the batch)."""

    def __init__(self):
        pass

    def model_inputs(self, batch):
        return batch
