"""What every op's batching rules (torch.library.register_vmap) share: the vmapped dimension
moved first, the batch put into the columns and back, the column sums of each example's rows, and
one example of an argument, empty, for the op's own argument checks."""
import torch


def batch_first(t, dim, batch_size):
    """t with its vmapped dimension first; an unbatched t is expanded along a new first one."""
    return t.movedim(dim, 0) if dim is not None else t.expand(batch_size, *t.shape)


def columns_per_example(t, dim, batch_size):
    """[B, ..., C] (t's vmapped dimension dim, or none) -> [..., C * B]: each column of every row
    holds the B examples' values side by side, so a per-feature argument of C * B applies each
    example's own values and a column sum is a sum per example."""
    t = batch_first(t, dim, batch_size)
    return t.movedim(0, -1).reshape(*t.shape[1:-1], t.shape[-1] * batch_size)


def examples_from_columns(t, batch_size, columns):
    """[..., C * B] -> [B, ..., C] (C = columns), the inverse of columns_per_example."""
    return t.reshape(*t.shape[:-1], columns, batch_size).movedim(-1, 0)


def sum_per_example(t):
    """[B, ..., C] -> [B, C]: the column sums of each example's rows."""
    return t.sum(dim=tuple(range(1, t.dim() - 1))) if t.dim() > 2 else t


def rows_example(x, dim):
    """An empty CPU tensor with what the ops' argument checks read of one example of x (or of an
    argument shaped like it): its rank, its last size and its dtype."""
    shape = [n for k, n in enumerate(x.shape) if k != dim]
    return torch.empty([0] * (len(shape) - 1) + shape[-1:], dtype=x.dtype)


def row_example(row, dim):
    """One example of a per-feature argument (bias, weight; small), as an empty CPU tensor of its
    shape and dtype."""
    return torch.empty([n for k, n in enumerate(row.shape) if k != dim], dtype=row.dtype)
