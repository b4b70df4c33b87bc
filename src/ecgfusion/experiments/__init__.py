"""Experiments: the paper's two experiments reproduced end to end (`ecgfusion reproduce`)."""
