"""ecgfusion: hybrid CNN-Transformer ECG classification on real PhysioNet data.

The Python API (docs/python-api.md)::

    import ecgfusion
    model = ecgfusion.load_pretrained("mitdb-late-fusion")
    probs = model.predict_beats(beats)              # [n, 187] beats at 125 Hz -> [n, 5]
    result = model.predict_signal(signal, fs=360)   # one raw lead -> R peaks, labels, probs

Its names are imported on first use (PEP 562), so ``import ecgfusion`` does not load torch.
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING

# OpenMP threads that spin while waiting were measured 3-8x slower on a 2-core machine whenever
# any other process wanted a core (docs/performance.md); this must be set before torch loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = [
    "Predictor",
    "__version__",
    "create_model",
    "evaluate",
    "list_models",
    "list_pretrained",
    "load_config",
    "load_pretrained",
    "load_run",
    "train",
]
#: The public API, all in ecgfusion.api.
_API = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from ecgfusion.api import (
        Predictor,
        create_model,
        evaluate,
        list_models,
        list_pretrained,
        load_config,
        load_pretrained,
        load_run,
        train,
    )


def __getattr__(name: str):
    if name in _API:
        from ecgfusion import api

        value = getattr(api, name)
        globals()[name] = value  # the next access skips this function
        return value
    raise AttributeError(f"module 'ecgfusion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
