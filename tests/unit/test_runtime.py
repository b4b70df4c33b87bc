"""Thread and precision settings."""

from __future__ import annotations

import pytest
import torch

from ecgfusion.errors import ConfigError
from ecgfusion.runtime import inference_autocast, native_bf16, use_bf16


def test_precision_resolves_to_bf16_only_where_asked_or_native():
    assert use_bf16("32") is False
    assert use_bf16("bf16") is True
    assert use_bf16("auto") is native_bf16()
    with pytest.raises(ConfigError, match="precision must be one of"):
        use_bf16("fp16")


def test_inference_autocast_changes_the_matmul_dtype_only_when_on():
    a = torch.ones(4, 4)
    with inference_autocast(True):
        assert (a @ a).dtype == torch.bfloat16
    with inference_autocast(False):
        assert (a @ a).dtype == torch.float32


def test_training_precision_auto_is_native_bf16_only():
    from ecgfusion.runtime import training_precision

    assert training_precision("32") == "32"
    assert training_precision("bf16-mixed") == "bf16-mixed"
    assert training_precision("auto") == ("bf16-mixed" if native_bf16() else "32")
    with pytest.raises(ConfigError, match="trainer.precision"):
        training_precision("16")
