"""ecgfusion: hybrid CNN-Transformer ECG classification on real PhysioNet data."""

import os as _os

# OpenMP threads that spin while waiting were measured 3-8x slower on a 2-core machine whenever
# any other process wanted a core (docs/performance.md); this must be set before torch loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
