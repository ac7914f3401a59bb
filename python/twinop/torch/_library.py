"""Loads one of the two compiled PyTorch op libraries, which register the same twinop:: ops (only
one may, in a process):

- classic (`_twinop_torch.so`, csrc/torch/): torch's C++ API; loads only in the torch it was
  built against;
- stable (`_twinop_torch_stable.so`, csrc/torch_stable/): the LibTorch stable ABI; loads in every
  torch from the version it targets (2.10) on.

By default the classic library, when it was built for the installed torch, else the stable one;
TWINOP_TORCH_ABI=classic or stable forces a choice. ABI says which one was loaded.
"""
import os

import torch

from .. import _build_info, _loader

CHOICES = ("classic", "stable")


def _path(abi):
    """The library's path, or ImportError saying why it cannot be loaded here."""
    if abi == "classic":
        return _loader.library_path("torch", _build_info.TORCH_VERSION, torch.__version__, "_twinop_torch.so")
    return _loader.stable_library_path("torch", _build_info.TORCH_STABLE_TARGET, torch.__version__,
                                       "_twinop_torch_stable.so")


def _choose(forced):
    """(abi, path): the forced choice, else the first of CHOICES that loads here."""
    if forced:
        if forced not in CHOICES:
            raise ImportError(f"TWINOP_TORCH_ABI must be one of {', '.join(CHOICES)} (or unset); got {forced!r}")
        return forced, _path(forced)
    errors = []
    for abi in CHOICES:
        try:
            return abi, _path(abi)
        except ImportError as error:
            errors.append(f"{abi}: {error}")
    raise ImportError("no twinop torch op library loads here. " + " ".join(errors))


ABI, PATH = _choose(os.environ.get("TWINOP_TORCH_ABI", ""))
torch.ops.load_library(PATH)
