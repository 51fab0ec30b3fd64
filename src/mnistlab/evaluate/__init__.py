"""Evaluation: pure functions of saved artefacts (logits, labels, features, samples)."""
