"""Discrete units: features, k-means tokenizer bundles, quantisation and unit-quality reports."""
