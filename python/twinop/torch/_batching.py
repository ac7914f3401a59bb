"""What every op's batching rules (torch.library.register_vmap) share: the vmapped dimension
moved first, a per-example row vector broadcast against rows, the column sums of each example's
rows, and one example of an argument, empty, for the op's own argument checks."""
import torch


def batch_first(t, dim, batch_size):
    """t with its vmapped dimension first; an unbatched t is expanded along a new first one."""
    return t.movedim(dim, 0) if dim is not None else t.expand(batch_size, *t.shape)


def per_row(row, dim, like):
    """A batched [B, C] row vector, shaped to broadcast against a batch-first `like`."""
    row = row.movedim(dim, 0)
    return row.reshape(row.shape[0], *([1] * (like.dim() - 2)), row.shape[-1])


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
