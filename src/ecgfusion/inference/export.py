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


#: ONNX input names of the model inputs (``EcgModel.inputs``): beats, and rr with a rhythm branch.
ONNX_NAMES = {"x": "beats", "rr": "rr"}


class Probabilities(nn.Module):
    """beats [B, n_samples] (and rr [B, 8] for a model with a rhythm branch) -> class
    probabilities [B, n_classes]: what a deployment needs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.inputs = tuple(getattr(model, "inputs", ("x",)))

    def forward(self, beats: Tensor, rr: Tensor | None = None) -> Tensor:
        named = {"x": beats, "rr": rr}
        return torch.softmax(self.model(**{k: named[k] for k in self.inputs}).scores, dim=1)


def example_inputs(model: nn.Module, n: int) -> tuple[Tensor, ...]:
    """Random inputs of ``n`` beats in ``model.inputs`` order (RR features around 1 s)."""
    from ecgfusion.features.rr import N_RR_FEATURES

    shapes = {"x": (n, model.n_samples), "rr": (n, N_RR_FEATURES)}
    names = getattr(model, "inputs", ("x",))
    return tuple(torch.rand(*shapes[k]) + (0.5 if k == "rr" else 0.0) for k in names)


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
    inputs = example_inputs(model, n_beats)
    with torch.inference_mode():
        expected = Probabilities(model).eval()(*inputs)
    got = onnx_probabilities(onnx_path, *(t.numpy() for t in inputs))
    return (got - expected).abs().max().item()


def _export(model: nn.Module, path: Path, opset: int, check) -> Path:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise DataError(
            "ONNX export needs onnx and onnxscript: pip install onnx onnxscript"
        ) from None
    if not hasattr(model, "n_samples") or getattr(model, "name", "") == "multimodal":
        raise DataError("only beat models (1D, 2D, fusions) can be exported to ONNX for now")
    wrapper = Probabilities(model).eval()
    example = example_inputs(model, 2)
    batch = torch.export.Dim("batch")
    # The temporary replaces ``path`` only when the block (export and check) succeeds.
    with atomic_path(path) as tmp:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                example,
                input_names=[ONNX_NAMES[k] for k in wrapper.inputs],
                output_names=["probs"],
                dynamic_shapes={ONNX_NAMES[k]: {0: batch} for k in wrapper.inputs},
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


def onnx_probabilities(path: str | Path, beats, rr=None) -> torch.Tensor:
    """Run an exported model with onnxruntime (used by the parity test and `export --check`);
    ``rr``: the beats' RR features, for a model exported with a rhythm branch."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"beats": np.asarray(beats, dtype=np.float32)}
    if rr is not None:
        feed["rr"] = np.asarray(rr, dtype=np.float32)
    out = session.run(None, feed)[0]
    return torch.from_numpy(out)
