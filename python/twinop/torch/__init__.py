"""twinop's PyTorch binding, two ops and their gradients:
- bias_act: the ops torch.ops.twinop.bias_act / bias_act_backward / bias_act_double_backward,
  the differentiable bias_act and the BiasAct module;
- rms_norm: the ops torch.ops.twinop.rms_norm / add_rms_norm / rms_norm_backward /
  add_rms_norm_backward, the differentiable rms_norm and add_rms_norm and the RMSNorm module;
each with fake kernels (for torch.compile and export), autograd, batching rules, autocast and
DTensor sharding rules.

The ops come from one of two compiled libraries (see _library.py); ABI says which:
"classic" or "stable"."""
import sys

from . import _library  # noqa: F401  (registers the ops; must come first)
from . import _autocast, _dual_check  # noqa: F401  (every op's autocast and dual-tensor policies)
from . import _bias_act_autograd, _bias_act_fake, _bias_act_out_autograd, _bias_act_second_order  # noqa: F401
from . import _bias_act_vmap, _rms_norm_ops  # noqa: F401  (all of them register on import)
from ._bias_act import bias_act
from ._library import ABI
from ._rms_norm import RMSNorm, add_rms_norm, rms_norm
from ._sharding import register_dtensor_sharding
from .module import BiasAct

if "torch.distributed.tensor" in sys.modules:  # else register_dtensor_sharding() does it, when asked
    register_dtensor_sharding()

__all__ = ["ABI", "BiasAct", "RMSNorm", "add_rms_norm", "bias_act", "register_dtensor_sharding", "rms_norm"]
