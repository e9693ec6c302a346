"""emoflow: a reproducible, cached, cluster-ready multimodal emotion-recognition workflow.

The package is the library behind the Snakemake workflow: every stage lives in a
subpackage (``emoflow.dataset``, ``emoflow.media``, ``emoflow.demo`` ...) and can be
imported and tested without Snakemake.  Keep this module free of heavy imports: every
rule imports it.
"""

__version__ = "0.1.0"
