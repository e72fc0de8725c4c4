"""The element-wise max of P1 Eq. 2 over each destination's neighbours, three exact ways.

Messages are post-ReLU (>= 0), so an empty neighbourhood pools to 0 and padding with 0 is
exact: :func:`dense_max_pool` pads every destination to the largest in-degree (fast for the
bounded fan-outs of training), :func:`scatter_max_pool` uses ``scatter_reduce`` (skewed full
neighbourhoods of inference), :func:`max_pool` picks between them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

POOL_IMPLS = ("auto", "dense", "scatter", "pyg")
# Padding to the largest in-degree may cost at most this many times the edge count; beyond
# it (heavy-tailed full neighbourhoods) the scatter max is used instead.
DENSE_MAX_OVERHEAD = 4.0


def dense_max_pool(messages: Tensor, edge_index: Tensor, n_dst: int) -> Tensor:
    """Eq. 2's max over a zero-padded (n_dst, k) neighbour table, k = the largest in-degree.

    Exact for messages >= 0 (they are post-ReLU): a padding slot points at an all-zero row,
    which never exceeds a real message, and a destination without edges pools to 0 as the
    scatter max does. The forward keeps a running max over the k slots (k gathers of
    (n_dst, d), never an (E, d) or (n_dst, k, d) tensor) and remembers the winning source per
    entry; the backward is a single index-add of the (n_dst, d) gradient onto those winners
    (ties go to the lowest slot, a valid subgradient).

    Args:
        messages: (n_src, d) non-negative messages.
        edge_index: (2, E) int64 [src; dst] local indices, any order.
        n_dst: number of destinations.

    Returns:
        (n_dst, d).
    """
    src, dst = edge_index[0], edge_index[1]
    if src.numel() == 0:
        return messages.new_zeros(n_dst, messages.size(1))
    table = _neighbour_table(src, dst, n_dst, pad=messages.size(0))  # (n_dst, k)
    return _PaddedMax.apply(messages, table)


class _PaddedMax(torch.autograd.Function):
    """out[v] = max_j messages_padded[table[v, j]] with a sparse backward (see dense_max_pool)."""

    @staticmethod
    def forward(ctx: Any, messages: Tensor, table: Tensor) -> Tensor:
        n_src, d = messages.shape
        padded = torch.cat([messages, messages.new_zeros(1, d)])  # (n_src + 1, d)
        out = padded[table[:, 0]]  # (n_dst, d)
        # Winning slot per entry; one byte each (fan-outs stay far below 256).
        slot = torch.zeros(
            out.shape, dtype=torch.uint8 if table.size(1) <= 256 else torch.int64, device=out.device
        )
        for j in range(1, table.size(1)):  # loop over fan-out slots, vectorised over nodes
            cand = padded[table[:, j]]
            better = cand > out
            out = torch.maximum(out, cand)
            slot.masked_fill_(better, j)
        ctx.save_for_backward(table, slot)
        ctx.n_src = n_src
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None]:
        table, slot = ctx.saved_tensors
        winner = table.gather(1, slot.long())  # (n_dst, d) source row of each max
        grad = grad_out.new_zeros(ctx.n_src + 1, grad_out.size(1))
        grad.scatter_add_(0, winner, grad_out)
        return grad[:-1], None


def _neighbour_table(src: Tensor, dst: Tensor, n_dst: int, pad: int) -> Tensor:
    """(n_dst, max in-degree) int64 table of each destination's sources, padded with ``pad``."""
    order = torch.argsort(dst, stable=True)
    src, dst = src[order], dst[order]
    deg = torch.bincount(dst, minlength=n_dst)  # (n_dst,)
    start = torch.cumsum(deg, 0) - deg
    slot = torch.arange(dst.numel(), device=dst.device) - start[dst]  # position within its dst
    table = torch.full((n_dst, int(deg.max())), pad, dtype=torch.long, device=dst.device)
    table[dst, slot] = src
    return table


def scatter_max_pool(messages: Tensor, edge_index: Tensor, n_dst: int) -> Tensor:
    """Eq. 2's max with ``scatter_reduce(..., "amax")``; destinations without edges get 0.

    Args:
        messages: (n_src, d) messages.
        edge_index: (2, E) int64 [src; dst] local indices.
        n_dst: number of destinations.

    Returns:
        (n_dst, d).
    """
    src, dst = edge_index[0], edge_index[1]
    out = messages.new_zeros(n_dst, messages.size(1))
    index = dst[:, None].expand(-1, messages.size(1))
    return out.scatter_reduce(0, index, messages[src], reduce="amax", include_self=False)


def max_pool(messages: Tensor, edge_index: Tensor, n_dst: int) -> Tensor:
    """Dense padded max when the in-degrees are bounded (training fan-outs), else scatter."""
    e = edge_index.size(1)
    if e == 0:
        return messages.new_zeros(n_dst, messages.size(1))
    k = int(torch.bincount(edge_index[1], minlength=n_dst).max())
    if n_dst * k <= DENSE_MAX_OVERHEAD * e:
        return dense_max_pool(messages, edge_index, n_dst)
    return scatter_max_pool(messages, edge_index, n_dst)
