"""What late and intermediate fusion share: N branches, freezing, and a head-only ``fuse``.

A fusion reads two or three views of a beat: the 1D model on the samples, the 2D model on their
spectrogram and, optionally, the rhythm model on the beat's RR features (issue 15). Every branch
is handled by the same loops, in :data:`BRANCHES` order.

A frozen branch sees each beat the same way every epoch, so a trainer can compute
``backbone_outputs`` once, cache them, and train only ``fuse`` (issue 7's fusion benchmark);
``forward(x, rr)`` is exactly ``fuse(*backbone_outputs(x, rr))``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgfusion.errors import ConfigError, ShapeError
from ecgfusion.models.base import EcgModel, ModelOutput
from ecgfusion.models.registry import create_model

BACKBONE_1D = "cnn_transformer_1d"
BACKBONE_2D = "cnn_2d"
RHYTHM = "rhythm_mlp"
#: Branch attribute -> the model it must hold. backbone_rr is present only with ``rhythm``.
BRANCHES: dict[str, str] = {
    "backbone_1d": BACKBONE_1D,
    "backbone_2d": BACKBONE_2D,
    "backbone_rr": RHYTHM,
}
_COMMON = ("n_classes", "n_samples", "sampling_rate")


class FusionModel(EcgModel):
    """Holds its branches as attributes (``backbone_1d``, ``backbone_2d`` and, with ``rhythm``,
    ``backbone_rr``); frozen ones get no gradients and stay in eval.

    Frozen means ``requires_grad=False`` on every branch parameter and the branches kept in
    eval mode whatever ``train()`` is called with, so BatchNorm statistics and dropout do not
    drift while the fusion weights train.
    """

    def __init__(
        self,
        n_classes: int,
        n_samples: int,
        sampling_rate: float,
        modules: tuple[EcgModel | None, ...],
        params: tuple[dict | None, ...],
        freeze: bool,
        rhythm: bool = False,
    ):
        """``modules`` / ``params``: a trained module or the hyper-parameters of a fresh one for
        each branch, in :data:`BRANCHES` order."""
        super().__init__(n_classes, n_samples, sampling_rate)
        modules = dict(zip(BRANCHES, modules, strict=True))
        params = dict(zip(BRANCHES, params, strict=True))
        self.freeze = bool(freeze)
        self.last_cache_hit = False  # set by cache_backbone_outputs
        self.rhythm = bool(
            rhythm or modules.get("backbone_rr") is not None or params.get("backbone_rr")
        )
        self.branch_keys = tuple(k for k in BRANCHES if k != "backbone_rr" or self.rhythm)
        self.branch_params: dict[str, dict] = {}
        for key in self.branch_keys:
            module, kwargs = self._backbone(key, BRANCHES[key], modules.get(key), params.get(key))
            setattr(self, key, module)
            self.branch_params[key] = kwargs
        if self.freeze:
            for backbone in self.branches:
                backbone.requires_grad_(False)
                backbone.eval()

    @property
    def branches(self) -> list[EcgModel]:
        return [getattr(self, key) for key in self.branch_keys]

    def input_shapes(self) -> dict[str, tuple]:
        shapes: dict[str, tuple] = {}
        for branch in self.branches:
            shapes.update(branch.input_shapes())
        return shapes

    def _backbone(
        self, key: str, expected: str, module: EcgModel | None, params: dict | None
    ) -> tuple[EcgModel, dict]:
        setting = {
            "n_classes": self.n_classes,
            "n_samples": self.n_samples,
            "sampling_rate": self.sampling_rate,
        }
        if module is None:
            params = dict(params or {})
            clash = sorted(set(params) & set(_COMMON))
            if clash:
                raise ConfigError(
                    f"{self.name}: {key}_params must not set {', '.join(clash)}; "
                    "the fusion model's own values are used"
                )
            return create_model(expected, **setting, **params), params
        if params:
            raise ConfigError(
                f"{self.name}: give either {key} (a module) or {key}_params, not both"
            )
        if not isinstance(module, EcgModel) or module.name != expected:
            raise ConfigError(
                f"{self.name}: {key} must be a {expected!r} model (create_model or load_model), "
                f"got {type(module).__name__}"
            )
        for field, want in setting.items():
            if getattr(module, field) != want:
                raise ConfigError(
                    f"{self.name}: {key} was built with {field}={getattr(module, field)} "
                    f"but the fusion model has {field}={want}"
                )
        spec_kwargs = (module.spec or {}).get("kwargs", {})
        return module, {k: v for k, v in spec_kwargs.items() if k not in _COMMON}

    def spec_kwargs(self, params: dict) -> dict:
        """Checkpoint kwargs: branch modules replaced by the hyper-parameters rebuilding them."""
        kwargs = {k: v for k, v in params.items() if k not in BRANCHES}
        for key in self.branch_keys:
            kwargs[f"{key}_params"] = self.branch_params[key]
        if self.rhythm:
            kwargs["rhythm"] = True
        return kwargs

    def train(self, mode: bool = True) -> FusionModel:
        super().train(mode)
        if self.freeze:
            for backbone in self.branches:
                backbone.eval()
        return self

    def branch_inputs(self, x: Tensor | None, rr: Tensor | None) -> dict[str, Tensor]:
        """The named inputs this fusion reads, checked: beats always, RR features with rhythm."""
        if x is None:
            raise ShapeError(f"{self.name} needs the beats x [batch, {self.n_samples}]")
        inputs = {"x": self.check_beats(x)}
        if self.rhythm:
            if rr is None:
                raise ShapeError(
                    f"{self.name} has a rhythm branch and needs each beat's RR features: "
                    "call it with rr [batch, 8] (ecgfusion.features.rr.rr_features)"
                )
            if rr.shape[0] != inputs["x"].shape[0]:
                raise ShapeError(
                    f"{self.name}: x has {inputs['x'].shape[0]} beats but rr has "
                    f"{rr.shape[0]} rows; give one row of RR features per beat"
                )
            inputs["rr"] = rr
        return inputs

    def backbone_outputs(self, x: Tensor, rr: Tensor | None = None) -> tuple[ModelOutput, ...]:
        """Every branch on its inputs; no autograd graph through frozen branches."""
        inputs = self.branch_inputs(x, rr)
        needs_grad = any(t.requires_grad for t in inputs.values())
        grad = torch.is_grad_enabled() and (not self.freeze or needs_grad)
        with torch.set_grad_enabled(grad):
            return tuple(
                branch(**{k: inputs[k] for k in branch.inputs}) for branch in self.branches
            )

    def forward(self, x: Tensor, rr: Tensor | None = None) -> ModelOutput:
        # Each subclass defines fuse(*outputs) -> ModelOutput (its head).
        return self.fuse(*self.backbone_outputs(x, rr))

    @property
    def packed_width(self) -> int:
        """Columns of :meth:`pack_outputs`: every branch's scores and features side by side."""
        return sum(self.n_classes + b.feature_dim for b in self.branches)

    def pack_outputs(self, *outputs: ModelOutput) -> Tensor:
        """The branches' outputs as one [B, packed_width] tensor, cached and batched as beats."""
        self.check_outputs(*outputs)
        return torch.cat([t for out in outputs for t in (out.scores, out.features)], dim=1)

    def unpack_outputs(self, packed: Tensor) -> tuple[ModelOutput, ...]:
        if packed.dim() != 2 or packed.shape[1] != self.packed_width:
            raise ShapeError(
                f"{self.name}: packed backbone outputs must be [batch, {self.packed_width}], got "
                f"{tuple(packed.shape)}; make them with pack_outputs of this model"
            )
        sizes = [n for b in self.branches for n in (self.n_classes, b.feature_dim)]
        parts = packed.split(sizes, dim=1)
        return tuple(ModelOutput(parts[i], parts[i + 1]) for i in range(0, len(parts), 2))

    def fuse_packed(self, packed: Tensor) -> ModelOutput:
        """``fuse`` on cached outputs: equal to ``forward`` on the beats they were made from."""
        return self.fuse(*self.unpack_outputs(packed))

    @torch.no_grad()
    def cache_backbone_outputs(
        self, inputs: Tensor | dict[str, Tensor], batch_size: int = 1024
    ) -> Tensor:
        """Packed outputs of the frozen branches for all beats, on the CPU.

        ``inputs``: the beats x, or a dict of this model's named inputs (x, and rr with rhythm).
        Only frozen branches give the same outputs every epoch; computed once, a fusion epoch
        trains the head alone (issue 7: > 50x faster per epoch). Each branch's outputs are kept
        by its weights and inputs, so the fusions of one seed (with and without the rhythm
        branch) run each backbone once.
        """
        if not self.freeze:
            raise ConfigError(
                f"{self.name}: backbone outputs can only be cached with freeze=True; jointly "
                "trained backbones change every step"
            )
        named = {"x": inputs} if isinstance(inputs, Tensor) else dict(inputs)
        named = self.branch_inputs(named.get("x"), named.get("rr"))
        device = next(self.parameters()).device
        parts, hits = [], []
        for branch in self.branches:
            mine = {k: named[k] for k in branch.inputs}
            key = (
                _fingerprint(branch),
                "|".join(_tensor_fingerprint(mine[k]) for k in sorted(mine)),
            )
            hits.append(key in _OUTPUT_MEMO)
            if not hits[-1]:
                n = len(next(iter(mine.values())))
                outs = [
                    branch(**{k: v[s : s + batch_size].to(device) for k, v in mine.items()})
                    for s in range(0, n, batch_size)
                ]
                width = self.n_classes + branch.feature_dim
                _OUTPUT_MEMO[key] = (
                    torch.cat([torch.cat([o.scores, o.features], 1).float().cpu() for o in outs])
                    if outs
                    else named["x"].new_zeros(0, width)
                )
            parts.append(_OUTPUT_MEMO[key])
            _OUTPUT_MEMO[key] = _OUTPUT_MEMO.pop(key)  # most recently used last
            while len(_OUTPUT_MEMO) > _MEMO_ENTRIES:
                _OUTPUT_MEMO.pop(next(iter(_OUTPUT_MEMO)))
        # reported in test timings: outputs an earlier stage on these backbones computed
        self.last_cache_hit = all(hits)
        packed = torch.cat(parts, dim=1)
        self.unpack_outputs(packed)  # the widths are this model's
        return packed

    def check_outputs(self, *outputs: ModelOutput) -> None:
        """Cached branch outputs must match the branches this head was built for."""
        if len(outputs) != len(self.branch_keys):
            raise ShapeError(
                f"{self.name}.fuse: expected {len(self.branch_keys)} branch outputs "
                f"({', '.join(self.branch_keys)}), got {len(outputs)}"
            )
        for key, out, backbone in zip(self.branch_keys, outputs, self.branches, strict=True):
            want_scores = (self.n_classes,)
            want_features = (backbone.feature_dim,)
            if (
                out.scores.dim() != 2
                or tuple(out.scores.shape[1:]) != want_scores
                or out.features.dim() != 2
                or tuple(out.features.shape[1:]) != want_features
                or out.scores.shape[0] != out.features.shape[0]
            ):
                raise ShapeError(
                    f"{self.name}.fuse: {key} outputs must have scores [batch, {self.n_classes}] "
                    f"and features [batch, {backbone.feature_dim}], got scores "
                    f"{tuple(out.scores.shape)} and features {tuple(out.features.shape)}"
                )
        # pairwise, not a set: under torch.export the batch size is a symbol, not hashable
        first = outputs[0].scores.shape[0]
        if any(out.scores.shape[0] != first for out in outputs[1:]):
            raise ShapeError(
                f"{self.name}.fuse: the branch outputs have different batch sizes "
                f"({', '.join(str(out.scores.shape[0]) for out in outputs)})"
            )


#: Frozen branches give the same outputs to every fusion head trained on them (the fusion stages
#: of `ecgfusion reproduce` share one 1D and one 2D model), so the outputs of the last few
#: (branch weights, inputs) pairs are kept in memory (~0.3 GB per 16k beats for the 1D model).
_OUTPUT_MEMO: dict[tuple[str, str], Tensor] = {}
_MEMO_ENTRIES = 12


def _tensor_fingerprint(x: Tensor) -> str:
    import hashlib

    data = x.detach().cpu().contiguous()
    return f"{tuple(data.shape)}:{data.dtype}:" + hashlib.sha1(data.numpy().tobytes()).hexdigest()


def _fingerprint(*modules: torch.nn.Module) -> str:
    import hashlib

    h = hashlib.sha1()
    for module in modules:
        for name, value in module.state_dict().items():
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
