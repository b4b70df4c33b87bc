"""The paper's models, created by name: ``create_model("cnn_2d", n_classes=5, ...)``.

Importing this package registers every model (one module each).
"""

from __future__ import annotations

from ecgfusion.models import (  # noqa: F401  (imported to register the models)
    cnn_2d,
    cnn_transformer_1d,
    intermediate_fusion,
    kachuee_cnn,
    late_fusion,
    multimodal,
    rhythm_mlp,
)
from ecgfusion.models.base import EcgModel, ModelOutput, count_parameters
from ecgfusion.models.io import load_model, read_model_file, save_model
from ecgfusion.models.registry import (
    MODELS,
    ModelSummary,
    accepted_params,
    create_model,
    describe_model,
    list_models,
    register_model,
)

__all__ = [
    "MODELS",
    "EcgModel",
    "ModelOutput",
    "ModelSummary",
    "accepted_params",
    "count_parameters",
    "create_model",
    "describe_model",
    "list_models",
    "load_model",
    "read_model_file",
    "register_model",
    "save_model",
]
