"""Feature extractors behind one interface (:mod:`emoflow.features.base`), picked by
name from config; the registry (:mod:`emoflow.features.registry`) says what each needs."""
