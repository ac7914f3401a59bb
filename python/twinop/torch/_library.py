"""Loads the compiled PyTorch op library (the TORCH_LIBRARY schemas and kernels)."""
import torch

from .. import _build_info, _loader

torch.ops.load_library(_loader.library_path("torch", _build_info.TORCH_VERSION, torch.__version__, "_twinop_torch.so"))
