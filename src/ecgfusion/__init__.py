"""ecgfusion: hybrid CNN-Transformer ECG classification on real PhysioNet data."""

__version__ = "0.1.0"
