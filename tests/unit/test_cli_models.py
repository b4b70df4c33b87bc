"""`ecgfusion models list` prints every registered model with its size and shapes."""

from __future__ import annotations

import pytest

from ecgfusion.cli import main
from ecgfusion.models import count_parameters, create_model, list_models


def test_models_list_prints_every_model_with_its_parameter_count(capsys):
    with pytest.raises(SystemExit) as info:
        main(["models", "list"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    one_d = create_model("cnn_transformer_1d", n_classes=5, n_samples=187, sampling_rate=125.0)
    assert f"{count_parameters(one_d):,}" in out
    assert "3x128x128" in out and "[B, 187]" in out
