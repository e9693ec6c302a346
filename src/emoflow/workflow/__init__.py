"""What a run is made of, in plain Python (no Snakemake): where its results live
(:mod:`layout`) and how each stage is called (:mod:`stages`).  The rules, the predictor,
the CLI and the repository tooling read them; nothing here runs a stage."""
