"""Evaluation: classification scores (accuracy, UAR, macro-F1), confusion matrices and plots."""
