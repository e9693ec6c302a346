"""Offline speech recognition behind a small backend interface (:mod:`emoflow.asr.backends`)."""
