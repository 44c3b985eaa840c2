"""The float transforms on torch: the training model's g_a, h_a and g_s as a coding engine.

g_a runs in bf16 where the device has native bf16 arithmetic (``codec/networks/precision.py``): it trains under
bf16 autocast and only picks the latents (the file is exact whatever it computes), so it is faster
there at the rate-distortion that training reached with it.  (The ONNX graph of g_a rounds its input and weights as bf16 autocast
does, on every CPU, ``bf16_autocast.py``; on a CPU without bf16, g_a here runs in float32 and the two
runtimes' files differ in 0.1-1 % of the latents, and still decode on either.)  h_a and g_s run in float32.  On CPU the
convolutions run on channels-last tensors, about twice as fast as NCHW in oneDNN.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..networks.precision import native_bf16

__all__ = ["TorchTransforms"]


class TorchTransforms:
    """``coder.FloatTransforms`` on a ``LicModel``'s networks, on the model's device."""

    def __init__(self, model: nn.Module):  # a LicModel, which makes its own (``LicModel.coder``)
        self.model = model
        self.device = model.device

    def _run(self, network: nn.Module, x: np.ndarray, bf16: bool = False) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = network(tensor.contiguous(memory_format=torch.channels_last))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return out.float().contiguous().cpu().numpy()

    def analyse(self, x: np.ndarray) -> np.ndarray:
        return self._run(self.model.g_a, x, bf16=native_bf16(self.device.type))

    def hyper_analyse(self, y: np.ndarray) -> np.ndarray:
        return self._run(self.model.hyper.h_a, y)

    def synthesise(self, y_hat: np.ndarray) -> np.ndarray:
        return self._run(self.model.g_s, y_hat)
