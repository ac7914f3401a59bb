"""What every op's batching rules share: the batch axis moved first, a per-example row vector
broadcast against rows, the batch put into the columns and back, and the column sums of each
example's rows."""
import jax.numpy as jnp


def batch_first(a, dim, size):
    """a with its batch axis first (an unbatched a is broadcast along a new one)."""
    return jnp.moveaxis(a, dim, 0) if dim is not None else jnp.broadcast_to(a, (size, *a.shape))


def per_row(row, like):
    """A batched [B, C] row vector, shaped to broadcast against a batch-first `like`."""
    return row.reshape(row.shape[0], *([1] * (like.ndim - 2)), row.shape[-1]).astype(like.dtype)


def sum_per_example(t):
    """[B, ..., C] -> [B, C]: the column sums of each example's rows."""
    return t.sum(axis=tuple(range(1, t.ndim - 1)))


def columns_per_example(a):
    """Batch-first [B, ..., C] -> [..., C * B]: each column of every row holds the B examples'
    values side by side, so a per-feature argument of C * B applies each example's own values and
    a column sum is a sum per example (a sharded C stays the major part: no resharding)."""
    return jnp.moveaxis(a, 0, -1).reshape(*a.shape[1:-1], a.shape[-1] * a.shape[0])


def examples_from_columns(a, size, columns):
    """[..., C * B] -> batch-first [B, ..., C] (C = columns), the inverse of columns_per_example."""
    return jnp.moveaxis(a.reshape(*a.shape[:-1], columns, size), -1, 0)
