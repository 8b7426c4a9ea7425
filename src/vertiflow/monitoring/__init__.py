"""Drift of model inputs and predictions against the training data."""
