"""twinop: one fused y = act(x + bias) kernel as a PyTorch op, a TensorFlow op, a JAX custom call
and a numpy module.

`import twinop` imports no framework; `twinop.torch`, `twinop.tf`, `twinop.jax` and
`twinop.numpy` each load one binding.
"""
from ._twinop_numpy import ACTIVATIONS

__version__ = "0.1.0"
__all__ = ["ACTIVATIONS", "__version__"]
