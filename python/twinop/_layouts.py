"""How each op's tensor arguments and results are laid out relative to x (..., C), in order: the
one description the frameworks' sharding rules are derived from (twinop.torch._sharding,
twinop.jax._auto_partitioning). Non-tensor arguments (act; eps, offset) come last and are not
listed."""
from typing import NamedTuple

ROWS = "rows"              # shaped like x
ROW_STAT = "row_stat"      # x.shape[:-1]: one value per row (RMSNorm's rstd)
PARAM = "param"            # (C,): one value per feature, the same for every row (bias, weight)
PARAM_GRAD = "param_grad"  # (C,): a sum over x's rows (dbias, dweight)


class Layout(NamedTuple):
    arguments: tuple
    results: tuple
    features_apart: bool  # each feature's results need only that feature's inputs, so C may be sharded


OPS = {
    "bias_act": Layout((ROWS, PARAM), (ROWS,), features_apart=True),
    "bias_act_backward": Layout((ROWS, ROWS, PARAM), (ROWS, PARAM_GRAD), features_apart=True),
    "bias_act_double_backward": Layout((ROWS, PARAM, ROWS, ROWS, PARAM), (ROWS, ROWS, PARAM_GRAD),
                                       features_apart=True),
    # RMSNorm reduces over the features: each row must be whole on one device.
    "rms_norm": Layout((ROWS, PARAM), (ROWS, ROW_STAT), features_apart=False),
    "add_rms_norm": Layout((ROWS, ROWS, PARAM), (ROWS, ROWS, ROW_STAT), features_apart=False),
    "rms_norm_backward": Layout((ROWS, ROWS, ROW_STAT, PARAM), (ROWS, PARAM_GRAD), features_apart=False),
    "add_rms_norm_backward": Layout((ROWS, ROWS, ROWS, ROW_STAT, PARAM), (ROWS, PARAM_GRAD), features_apart=False),
}
