"""Judging a trained model: test metrics, the run report and its figures."""

from __future__ import annotations

from ecgfusion.evaluation.metrics import classification_metrics, headline

__all__ = ["classification_metrics", "headline"]
