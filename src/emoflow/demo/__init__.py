"""The embedded demo: a small labelled audio-visual corpus the workflow builds itself
from assets that installed packages ship (real face photos from scikit-image and
matplotlib, speech synthesised by espeak-ng).  See :mod:`emoflow.demo.generate`."""
