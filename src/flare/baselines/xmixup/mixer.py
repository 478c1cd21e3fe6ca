"""X-Mixup's mixing module: the target's cross-attention over the source's hidden states, its
entropy, and the entropy-gated interpolation of the two."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from flare.baselines.xmixup.config import XMixupConfig
from flare.errors import ConfigError


# --------------------------------------------------------------------------------------- mixer
def _masked_attention_entropy(scores: torch.Tensor, key_mask: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(scores) over the real keys, averaged over heads and real queries.

    scores (B, H, Lq, Lk); key_mask (B, Lk), query_mask (B, Lq) with 1 for real tokens. Returns (B,).
    """
    keys = key_mask.bool()[:, None, None, :]
    log_p = scores.masked_fill(~keys, torch.finfo(scores.dtype).min).log_softmax(-1)
    p = log_p.exp() * keys
    entropy = -(p * log_p.masked_fill(~keys, 0.0)).sum(-1)  # (B, H, Lq)
    queries = query_mask.to(entropy.dtype)[:, None, :]
    count = queries.sum((1, 2)) * scores.shape[1]
    return (entropy * queries).sum((1, 2)) / count.clamp_min(1.0)


def pair_entropy(scores: torch.Tensor, source_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """H = entropy(target over source) + entropy(source over target) of one score matrix (B, H, Lt, Ls)."""
    forward = _masked_attention_entropy(scores, source_mask, target_mask)
    backward = _masked_attention_entropy(scores.transpose(-1, -2), target_mask, source_mask)
    return forward + backward


class XMixupMixer(nn.Module):
    """Cross-attention of the target over the source plus the entropy-gated interpolation.

    The value and output projections start as the identity and the query and key projections too,
    so that at the start the cross-attended vector is a convex combination of source hidden states
    (a point on the same manifold as h_T, as with the authors' reuse of the pretrained attention)
    and the attention follows the similarity of the two sides' states. All of it is trained.
    """

    def __init__(self, hidden_size: int, num_heads: int, config: XMixupConfig):
        super().__init__()
        if hidden_size % num_heads:
            raise ConfigError(f"num_heads={num_heads} does not divide the hidden size {hidden_size}")
        self.hidden_size, self.num_heads = hidden_size, num_heads
        self.head_dim = hidden_size // num_heads
        self.lambda_mode, self.lambda_0 = config.lambda_mode, config.lambda_0
        self.normalize_qk = config.normalize_qk
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.o_proj = nn.Linear(hidden_size, hidden_size)
        self.entropy_gate = nn.Linear(1, 1)
        self.dropout = nn.Dropout(config.attention_dropout)
        with torch.no_grad():
            for proj in (self.q_proj, self.k_proj, self.v_proj, self.o_proj):
                proj.weight.copy_(torch.eye(hidden_size))
                proj.bias.zero_()
            self.entropy_gate.weight.fill_(config.entropy_weight_init)
            self.entropy_gate.bias.fill_(config.entropy_bias_init)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, target: torch.Tensor, source: torch.Tensor, source_mask: torch.Tensor,
                target_mask: torch.Tensor | None = None, lam: torch.Tensor | None = None):
        """target (B, Lt, d), source (B, Ls, d), masks 1 = real token. Returns (mixed target in the
        target's dtype, lambda (B,), attention probabilities (B, H, Lt, Ls))."""
        dtype = target.dtype
        weight_dtype = self.q_proj.weight.dtype
        t, s = target.to(weight_dtype), source.to(weight_dtype)
        batch, t_len, d = t.shape
        source_mask = source_mask.to(t.device)
        if target_mask is None or target_mask.shape[-1] != t_len:
            target_mask = torch.ones(batch, t_len, device=t.device, dtype=source_mask.dtype)
        q_in = F.layer_norm(t, (d,)) if self.normalize_qk else t
        k_in = F.layer_norm(s, (d,)) if self.normalize_qk else s
        q, k, v = self._heads(self.q_proj(q_in)), self._heads(self.k_proj(k_in)), self._heads(self.v_proj(s))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, Lt, Ls)
        keys = source_mask.bool()[:, None, None, :]
        probs = scores.masked_fill(~keys, torch.finfo(scores.dtype).min).softmax(-1) * keys
        context = (self.dropout(probs) @ v).transpose(1, 2).reshape(batch, t_len, d)
        cross = self.o_proj(context)
        if lam is None:
            if self.lambda_mode == "fixed":
                lam = torch.full((batch,), self.lambda_0, device=t.device, dtype=t.dtype)
            else:
                entropy = pair_entropy(scores, source_mask, target_mask)
                lam = self.lambda_0 * torch.sigmoid(self.entropy_gate(entropy[:, None]))[:, 0]
            lam = lam * (source_mask.sum(-1) > 0).to(lam.dtype)  # no source tokens: no mixing
        weight = lam.to(t.dtype)[:, None, None]
        mixed = (1.0 - weight) * t + weight * cross
        return mixed.to(dtype), lam, probs

