"""The HGNN's link-prediction losses: the hinge of P1 Eq. 4 and a sampled-softmax (InfoNCE)
variant, each per anchor (own negatives) or over a shared negative pool."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def hinge_loss(
    z_a: Tensor, z_p: Tensor, z_n: Tensor, margin: float, denominator: float | None = None
) -> Tensor:
    """Margin loss of P1 Eq. 4: mean over anchors and negatives of
    max(0, z_a.z_n - z_a.z_p + margin).

    Args:
        z_a: (B, d) anchors.
        z_p: (B, d) positives.
        z_n: (B, K, d) negatives.
        margin: Delta.
        denominator: divide the sum of the terms by this (a data-parallel rank passes the
            global batch's B x K, so the ranks' losses add up to the global mean); None: B x K.

    Returns:
        scalar loss.
    """
    pos = (z_a * z_p).sum(-1, keepdim=True)  # (B, 1)
    neg = torch.einsum("bd,bkd->bk", z_a, z_n)  # (B, K)
    hinge = F.relu(neg - pos + margin)
    return hinge.mean() if denominator is None else hinge.sum() / denominator


def shared_hinge_loss(
    z_a: Tensor,
    z_p: Tensor,
    z_pool: Tensor,
    margin: float,
    valid: Tensor | None = None,
    denominator: float | None = None,
) -> Tensor:
    """Eq. 4 with a pool of random catalogue negatives shared by every anchor of the batch:
    mean over the valid (anchor, pool node) pairs of max(0, z_a.z_n - z_a.z_p + margin).

    Each pool node is a uniformly random catalogue node, so every term is one of Eq. 4's
    (anchor, positive, random negative) terms; sharing only lets one extra seed serve all B
    anchors, so a (B, P) score matrix replaces B x K extra computation-graph seeds.

    Args:
        z_a: (B, d) anchors.
        z_p: (B, d) positives.
        z_pool: (P, d) shared negatives.
        margin: Delta.
        valid: (B, P) bool, False for pairs to leave out (the pool node is the anchor or its
            positive, or is not of the positive's type when negatives are type-matched);
            None keeps all.
        denominator: divide the sum of the valid terms by this (a data-parallel rank passes
            the global batch's number of valid pairs, so the ranks' losses add up to the
            global mean); None: this batch's number of valid pairs.

    Returns:
        scalar loss (0 when no pair is valid).
    """
    pos = (z_a * z_p).sum(-1, keepdim=True)  # (B, 1)
    hinge = F.relu(z_a @ z_pool.T - pos + margin)  # (B, P)
    total = hinge.sum() if valid is None else (hinge * valid).sum()
    if denominator is None:
        denominator = float(hinge.numel()) if valid is None else float(valid.sum())
    return total / max(denominator, 1.0)



def infonce_loss(
    z_a: Tensor, z_p: Tensor, z_n: Tensor, temperature: float, denominator: float | None = None
) -> Tensor:
    """InfoNCE with per-anchor negatives (P1's sampling): per anchor,
    -log softmax of z_a.z_p / tau among itself and the anchor's z_a.z_n / tau.

    Args:
        z_a: (B, d) anchors.
        z_p: (B, d) positives.
        z_n: (B, K, d) negatives.
        temperature: tau (> 0).
        denominator: divide the summed per-anchor losses by this (global B under DDP);
            None: B.

    Returns:
        scalar loss.
    """
    pos = (z_a * z_p).sum(-1, keepdim=True) / temperature  # (B, 1)
    neg = torch.einsum("bd,bkd->bk", z_a, z_n) / temperature  # (B, K)
    return _softmax_nll(pos, neg, denominator)


def _softmax_nll(pos: Tensor, neg: Tensor, denominator: float | None) -> Tensor:
    """Sum over anchors of -log softmax of ``pos`` (B, 1) among [pos, neg (B, K)], divided
    by ``denominator`` (None: B); -inf entries of ``neg`` are left out."""
    per_anchor = torch.logsumexp(torch.cat([pos, neg], dim=1), dim=1) - pos.squeeze(1)  # (B,)
    return per_anchor.sum() / max(float(pos.size(0)) if denominator is None else denominator, 1.0)


def shared_infonce_loss(
    z_a: Tensor,
    z_p: Tensor,
    z_pool: Tensor,
    temperature: float,
    valid: Tensor | None = None,
    denominator: float | None = None,
) -> Tensor:
    """Contrastive (InfoNCE / sampled-softmax) link loss over a shared pool of negatives.

    P1 names a contrastive loss and prints the hinge of Eq. 4; this is the softmax variant:
    for each anchor a with positive p and the pool N (uniform random catalogue nodes),

        l(a) = -log( exp(z_a.z_p / tau) / (exp(z_a.z_p / tau) + sum_{n in N, valid} exp(z_a.z_n / tau)) )

    Every negative of the pool contributes in proportion to how close it scores, instead of
    the hinge's all-or-nothing margin, so hard negatives dominate the gradient.

    Args:
        z_a: (B, d) anchors.
        z_p: (B, d) positives.
        z_pool: (P, d) shared negatives.
        temperature: tau (> 0); unit-norm z give scores in [-1/tau, 1/tau].
        valid: (B, P) bool, False for pool nodes that are no negative of that anchor (the
            anchor itself, its positive, another type under type matching); None keeps all.
        denominator: divide the sum of the per-anchor losses by this (a data-parallel rank
            or a chunk of a larger batch passes the global number of anchors); None: B.

    Returns:
        scalar loss.
    """
    pos = (z_a * z_p).sum(-1, keepdim=True) / temperature  # (B, 1)
    neg = (z_a @ z_pool.T) / temperature  # (B, P)
    if valid is not None:
        neg = neg.masked_fill(~valid, float("-inf"))
    return _softmax_nll(pos, neg, denominator)
