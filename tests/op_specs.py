"""What the shared suites (properties, threads, leaks, hostile arguments) need to know of each op,
whatever the binding: its inputs and their shapes, its attribute values, and bad ones.

A binding's call (tests/bindings.py) names its op; it takes an inputs namespace (every input of
that op, as the binding's tensors) and the op's attributes: bias_act's act string, or RMSNorm's
(eps, offset)."""
from dataclasses import dataclass
from typing import NamedTuple

from cases import ACTIVATIONS


class RmsNormAttrs(NamedTuple):
    eps: float
    offset: float


@dataclass(frozen=True)
class OpSpec:
    inputs: dict  # input name -> "x" (shaped like x) or "row" (shaped x.shape[-1:])
    attrs: tuple  # attribute values the threads and leak tests cycle through
    bad_attrs: object  # a value the op refuses with its argument error
    row_input: str  # the per-feature input, which the leak test gives a wrong size


OPS = {
    "bias_act": OpSpec({"x": "x", "dy": "x", "g": "x", "bias": "row", "g_bias": "row"}, ACTIVATIONS, "no such act",
                       "bias"),
}
# add_rms_norm takes the same inputs and attributes as rms_norm (its residual, and ds at its s).
OPS["rms_norm"] = OpSpec({"x": "x", "dy": "x", "residual": "x", "ds": "x", "weight": "row"},
                         (RmsNormAttrs(1e-6, 0.0), RmsNormAttrs(1e-5, 1.0), RmsNormAttrs(0.1, -0.5)),
                         RmsNormAttrs(-1.0, 0.0), "weight")
OPS["add_rms_norm"] = OPS["rms_norm"]


def attrs(op, k):
    """The k-th attribute value of op's cycle."""
    cycle = OPS[op].attrs
    return cycle[k % len(cycle)]


def input_shapes(op, x_shape):
    """{input name: shape} of op's inputs for an x of x_shape."""
    return {name: (x_shape if kind == "x" else x_shape[-1:]) for name, kind in OPS[op].inputs.items()}
