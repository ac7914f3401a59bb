"""What every op's batching rules share: the batch axis moved first, a per-example row vector
broadcast against rows, and the column sums of each example's rows."""
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
