"""ONNX export of a trained beat model, spectrogram included (it is a matrix product in the graph).

torch's dynamo exporter is used: the TorchScript one cannot export the fused Transformer encoder
path that a fusion model takes (`aten::_transformer_encoder_layer_fwd`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ecgfusion.errors import DataError
from ecgfusion.io import atomic_path

OPSET = 18


class Probabilities(nn.Module):
    """beats [B, n_samples] -> class probabilities [B, n_classes]: what a deployment needs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, beats: Tensor) -> Tensor:
        return torch.softmax(self.model(beats).scores, dim=1)


def export_onnx(model: nn.Module, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX (input ``beats`` [batch, n_samples], output ``probs``)."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise DataError(
            "ONNX export needs onnx and onnxscript: pip install onnx onnxscript"
        ) from None
    if not hasattr(model, "n_samples") or getattr(model, "name", "") == "multimodal":
        raise DataError("only beat models (1D, 2D, fusions) can be exported to ONNX for now")
    wrapper = Probabilities(model).eval()
    example = torch.rand(2, model.n_samples)
    batch = torch.export.Dim("batch")
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper,
            (example,),
            input_names=["beats"],
            output_names=["probs"],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
        )
        program.save(str(tmp))
    return path


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress lines and torchvision notices; keep the CLI output ours."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def onnx_probabilities(path: str | Path, beats) -> torch.Tensor:
    """Run an exported model with onnxruntime (used by the parity test and `export --check`)."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"beats": np.asarray(beats, dtype=np.float32)})[0]
    return torch.from_numpy(out)
