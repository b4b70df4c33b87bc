"""Data: PhysioNet readers, beat segmenters, labels, split protocols and the Parquet cache."""
