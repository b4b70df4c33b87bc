"""Inference: from a raw recording to labelled beats, annotation files and EC57-style scores."""
