"""Robustness of the frame CNN to label noise and occlusion (issue 20): label flipping
(:mod:`.noise`), landmark-placed occluders (:mod:`.occlude`), scores against FER2013 labels
and FER+ vote distributions (:mod:`.metrics`), the fit-and-score stage of the workflow's
``robustness`` rules (:mod:`.stage`) and their report table and plots (:mod:`.report`).
The training targets themselves (hard, votes, uncertainty-aware LDL) live with the
training loop, in :mod:`emoflow.nets.ldl`."""
