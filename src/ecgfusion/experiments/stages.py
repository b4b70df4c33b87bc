"""The stages of the paper's experiments and the protocols they run under: data that
`reproduce` trains and `compare` tabulates (neither imports the other for it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ecgfusion.experiments.presets import Preset

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
DATASETS = ("mitdb", "ptbxl-beats")
#: User-facing protocol names per dataset (PTB-XL: its folds keep patients apart).
PROTOCOLS = {
    "beat-random": {"mitdb": "beat-random", "ptbxl-beats": "beat-random"},
    "inter-patient": {"mitdb": "inter-patient", "ptbxl-beats": "strat-fold"},
}
CONFIG_SUFFIX = {"mitdb": "mitdb", "ptbxl-beats": "ptbxl"}
#: Datasets whose beats carry RR features (data.beats.BeatSet.rr): the rhythm stages run on these.
RHYTHM_DATASETS = ("mitdb",)


def user_protocol(dataset: str, internal: str) -> str:
    """The user-facing protocol name (a key of PROTOCOLS) of a dataset's split protocol."""
    for name, by_dataset in PROTOCOLS.items():
        if by_dataset.get(dataset) == internal:
            return name
    return internal


@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    config: str
    kind: str  # "1d" | "2d" | "baseline" | "rhythm" | "fusion"
    experiments: tuple[int, ...]
    #: The stage's own config keys (merged after the preset's).
    overrides: dict = field(default_factory=dict)
    joint: bool = False
    #: Key of the stage whose trained model starts this one (model.init_from).
    init_from: str | None = None
    #: A fusion with the rhythm branch (the rhythm_mlp stage's model) as a third view.
    rhythm: bool = False


_UNFROZEN = {"model": {"params": {"freeze": False}}}
_RHYTHM = {"model": {"params": {"rhythm": True}}}
STAGES: tuple[Stage, ...] = (
    Stage("cnn_transformer_1d", "1D CNN-Transformer", "cnn_transformer_1d", "1d", (1,)),
    Stage("cnn_2d", "2D CNN (spectrogram)", "cnn_2d", "2d", (1,)),
    Stage("kachuee_cnn", "Baseline: residual CNN (Kachuee 2018)", "kachuee_cnn", "baseline", (1,)),
    Stage("rhythm_mlp", "Rhythm: RR-feature MLP", "rhythm_mlp", "rhythm", (1,)),
    Stage("late_fusion", "Hybrid: late fusion", "late_fusion", "fusion", (1, 2)),
    Stage(
        "intermediate_concat", "Intermediate fusion: concat", "intermediate_concat", "fusion", (2,)
    ),
    Stage("intermediate_sum", "Intermediate fusion: sum", "intermediate_sum", "fusion", (2,)),
    Stage(
        "intermediate_weighted_sum",
        "Intermediate fusion: weighted sum",
        "intermediate_weighted_sum",
        "fusion",
        (2,),
    ),
    Stage(
        "late_fusion_joint",
        "Late fusion, backbones trained jointly",
        "late_fusion",
        "fusion",
        (2,),
        _UNFROZEN,
        joint=True,
        init_from="late_fusion",
    ),
    Stage(
        "intermediate_concat_joint",
        "Intermediate concat, backbones trained jointly",
        "intermediate_concat",
        "fusion",
        (2,),
        _UNFROZEN,
        joint=True,
        init_from="intermediate_concat",
    ),
    Stage(
        "late_fusion_rhythm",
        "Hybrid + rhythm: late fusion",
        "late_fusion",
        "fusion",
        (1, 2),
        _RHYTHM,
        rhythm=True,
    ),
    Stage(
        "intermediate_concat_rhythm",
        "Intermediate concat + rhythm",
        "intermediate_concat",
        "fusion",
        (2,),
        _RHYTHM,
        rhythm=True,
    ),
)
#: Stages that depend on no other stage (trained side by side when a preset sets jobs > 1).
INDEPENDENT_KINDS = ("1d", "2d", "baseline", "rhythm")


def preset_stages(preset: Preset, dataset: str | None = None) -> list[Stage]:
    """The stages a preset runs; the rhythm ones only with ``preset.rhythm`` and on a dataset
    whose beats carry RR features."""
    rhythm = preset.rhythm and (dataset is None or dataset in RHYTHM_DATASETS)
    return [
        s
        for s in STAGES
        if (preset.joint or not s.joint)
        and (preset.baseline or s.kind != "baseline")
        and (rhythm or not (s.rhythm or s.kind == "rhythm"))
    ]
