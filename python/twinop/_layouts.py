"""How each op's tensor arguments and results are laid out relative to x (..., C), in order: the
one description the frameworks' sharding rules are derived from (twinop.torch._sharding,
twinop.jax._auto_partitioning). Non-tensor arguments (act) come last and are not listed."""
from typing import NamedTuple

ROWS = "rows"              # shaped like x
PARAM = "param"            # (C,): one value per feature, the same for every row (bias)
PARAM_GRAD = "param_grad"  # (C,): a sum over x's rows (dbias)


class Layout(NamedTuple):
    arguments: tuple
    results: tuple
    features_apart: bool  # each feature's results need only that feature's inputs, so C may be sharded


OPS = {
    "bias_act": Layout((ROWS, PARAM), (ROWS,), features_apart=True),
    "bias_act_backward": Layout((ROWS, ROWS, PARAM), (ROWS, PARAM_GRAD), features_apart=True),
    "bias_act_double_backward": Layout((ROWS, PARAM, ROWS, ROWS, PARAM), (ROWS, ROWS, PARAM_GRAD),
                                       features_apart=True),
}
