"""emoflow: a reproducible, cached, cluster-ready multimodal emotion-recognition workflow.

The package is the library behind the Snakemake workflow: every stage lives in a
subpackage (``emoflow.dataset``, ``emoflow.media``, ``emoflow.demo`` ...) and can be
imported and tested without Snakemake.  Keep this module free of heavy imports: every
rule imports it (``Recognizer``, the Python API, is imported on first use).
"""

__version__ = "0.1.0"
__all__ = ["Recognizer", "__version__"]


def __getattr__(name):
    if name == "Recognizer":  # importlib, not an import statement: the stages' code closures
        import importlib  # (emoflow.codedeps) must not grow by the whole predictor

        return importlib.import_module("emoflow.predict.api").Recognizer
    raise AttributeError(f"module 'emoflow' has no attribute {name!r}")
