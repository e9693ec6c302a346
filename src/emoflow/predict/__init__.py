"""Prediction for new videos from a trained run.

* :mod:`.bundle`   the self-describing model bundle a run exports (rule ``bundle``) and its
  checked loading (versions, class list, file digests, safe deserialisation);
* :mod:`.pipeline` runs the per-video stages on new inputs — the same stage entry points
  the workflow's rules call, with the run's own config slices;
* :mod:`.apply`    fitted encoders, classifiers and the fusion applied to their outputs;
* :mod:`.timeline` per-second predictions over sliding windows and their plot;
* :mod:`.cli`      ``emoflow predict``; :mod:`.api` the :class:`~emoflow.predict.api.Recognizer`.
"""
