"""Tasks drive the one training pipeline (ecgfusion.training.trainer): beats of a beat dataset
(multiclass) or whole PTB-XL records (binary or multi-label). ``select.task_for`` picks the one
a config's dataset belongs to; ``base.Task`` is the interface."""
