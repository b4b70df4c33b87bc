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
PARITY_TOLERANCE = 1e-4  # largest |onnxruntime - torch| probability an export may differ by


class Probabilities(nn.Module):
    """beats [B, n_samples] -> class probabilities [B, n_classes]: what a deployment needs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, beats: Tensor) -> Tensor:
        return torch.softmax(self.model(beats).scores, dim=1)


def export_onnx(model: nn.Module, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX (input ``beats`` [batch, n_samples], output ``probs``)."""
    return _export(model, Path(path), opset, check=None)


def export_checked(
    model: nn.Module,
    path: str | Path,
    opset: int = OPSET,
    n_beats: int = 64,
    tolerance: float = PARITY_TOLERANCE,
) -> tuple[Path, float]:
    """`export_onnx`, with the parity check run on the written file before it takes ``path``.

    Returns ``path`` and the largest |onnxruntime - torch| difference on ``n_beats`` random beats.
    An export that differs by more than ``tolerance`` raises DataError and leaves ``path`` as it
    was (absent, or the earlier export): only this call's temporary is removed.
    """
    path = Path(path)
    diff = float("nan")

    def check(tmp: Path) -> None:
        nonlocal diff
        diff = parity_error(model, tmp, n_beats)
        if not diff <= tolerance:
            limit = f"{tolerance:.0e}".replace("e-0", "e-")  # 1e-4, as the CLI always wrote
            raise DataError(f"{path}: onnxruntime differs from torch by {diff:.2e} (> {limit})")

    return _export(model, path, opset, check), diff


def parity_error(model: nn.Module, onnx_path: str | Path, n_beats: int = 64) -> float:
    """Largest |onnxruntime - torch| class probability on ``n_beats`` random beats."""
    beats = torch.rand(n_beats, model.n_samples)
    with torch.inference_mode():
        expected = torch.softmax(model(beats).scores, dim=1)
    return (onnx_probabilities(onnx_path, beats.numpy()) - expected).abs().max().item()


def _export(model: nn.Module, path: Path, opset: int, check) -> Path:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise DataError(
            "ONNX export needs onnx and onnxscript: pip install onnx onnxscript"
        ) from None
    if not hasattr(model, "n_samples") or getattr(model, "name", "") == "multimodal":
        raise DataError("only beat models (1D, 2D, fusions) can be exported to ONNX for now")
    if tuple(getattr(model, "inputs", ("x",))) != ("x",):
        raise DataError(
            f"{model.name} reads RR features besides the beats; ONNX export takes models whose "
            "only input is the beat (1D, 2D, fusions without a rhythm branch) for now"
        )
    wrapper = Probabilities(model).eval()
    example = torch.rand(2, model.n_samples)
    batch = torch.export.Dim("batch")
    # The temporary replaces ``path`` only when the block (export and check) succeeds.
    with atomic_path(path) as tmp:
        with warnings.catch_warnings(), _quiet():
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
        if check is not None:
            check(tmp)
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
