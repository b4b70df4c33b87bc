"""CPU speed paths keep the numbers: the 2D CNN's eval chunks and channels-last layout, threads."""

from __future__ import annotations

import torch

from ecgfusion.models import create_model
from ecgfusion.runtime import configure_threads


def _small_2d():
    torch.manual_seed(0)
    return create_model("cnn_2d", n_classes=5, n_samples=187, sampling_rate=125.0, filters=4,
                        image_size=32).eval()


def test_eval_chunks_and_layout_give_the_same_outputs_as_one_nchw_batch():
    x = torch.rand(10, 187)
    model = _small_2d()
    model.eval_chunk = 3  # 4 chunks, the last one short
    with torch.no_grad():
        chunked = model(x)
        model.eval_chunk, model.channels_last = 1 << 30, False
        whole = model(x)
    torch.testing.assert_close(chunked.scores, whole.scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked.features, whole.features, rtol=1e-5, atol=1e-6)


def test_training_batches_are_never_chunked():
    """Training BatchNorm normalises with the batch's statistics: a chunk would change them."""
    model = _small_2d().train()
    model.eval_chunk = 2
    calls = []
    model.blocks.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    model(torch.rand(6, 187))
    assert calls == [6]
    model.eval()
    with torch.no_grad():
        model(torch.rand(6, 187))
    assert calls[1:] == [2, 2, 2]


def test_configure_threads_sets_and_returns_the_count():
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        assert configure_threads(None) >= 1
    finally:
        torch.set_num_threads(before)


def test_fusion_stages_share_frozen_backbone_outputs():
    import torch

    from ecgfusion.models import create_model

    small = {"n_layers": 1, "channels": 16, "n_heads": 2}
    late = create_model("late_fusion", n_classes=5, n_samples=187, sampling_rate=125.0,
                        backbone_1d_params=small)
    x = torch.rand(40, 187)
    first = late.cache_backbone_outputs(x)
    inter = create_model("intermediate_fusion", n_classes=5, n_samples=187, sampling_rate=125.0,
                         backbone_1d=late.backbone_1d, backbone_2d=late.backbone_2d)
    assert not late.last_cache_hit
    again = inter.cache_backbone_outputs(x.clone())  # same weights, same beats: reused
    assert inter.last_cache_hit and torch.equal(again, first)
    other = create_model("late_fusion", n_classes=5, n_samples=187, sampling_rate=125.0,
                         backbone_1d_params=small)
    other.cache_backbone_outputs(x)
    assert not other.last_cache_hit  # other weights: computed anew
    late.cache_backbone_outputs(x[:39])
    assert not late.last_cache_hit  # other beats: computed anew
    # A fusion with the rhythm branch reuses the 1D and 2D outputs and adds its own.
    three = create_model("late_fusion", n_classes=5, n_samples=187, sampling_rate=125.0,
                         backbone_1d=late.backbone_1d, backbone_2d=late.backbone_2d, rhythm=True)
    packed = three.cache_backbone_outputs({"x": x, "rr": torch.rand(40, 8)})
    assert not three.last_cache_hit and torch.equal(packed[:, : first.shape[1]], first)
