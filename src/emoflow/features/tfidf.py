"""TF-IDF of transcripts: the vocabulary and IDF are fitted on the training split only
(rule ``fit_tfidf``: ``python -m emoflow.features.fit tfidf``, which calls :func:`fit_stage`), saved as JSON, then
applied per shard by the ``tfidf`` extractor."""

from __future__ import annotations

import json

import numpy as np

from emoflow.features.base import Extractor, Output


def fit(texts: list[str], max_features: int, ngram_max: int, min_df: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(max_features=max_features, ngram_range=(1, ngram_max), min_df=min_df, sublinear_tf=True)
    vec.fit(texts if any(t.strip() for t in texts) else ["<empty>"])
    vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    return {"vocabulary": vocab, "idf": vec.idf_.tolist(), "ngram_max": ngram_max, "fitted_on": len(texts)}


class TfIdf(Extractor):
    defaults = {"model": None, "max_features": 2000, "ngram_max": 2, "min_df": 1}

    def setup(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not self.params["model"]:
            raise ValueError("tfidf needs a fitted model (the workflow's fit_tfidf rule makes it)")
        with open(self.params["model"], encoding="utf-8") as f:
            m = json.load(f)
        self.vec = TfidfVectorizer(vocabulary=m["vocabulary"], ngram_range=(1, m["ngram_max"]), sublinear_tf=True)
        self.vec.idf_ = np.asarray(m["idf"])
        self._dim = len(m["vocabulary"])

    @property
    def dim(self) -> int:
        return self._dim

    def extract(self, item) -> Output:
        return Output(self.vec.transform([item]).toarray()[0].astype(np.float32))


def fit_stage(job) -> None:
    """The workflow's fit (:class:`emoflow.features.fit.FitJob`): the training split's
    transcripts (manifest, every shard's transcripts)."""
    import pandas as pd

    from emoflow.storage import read_table, write_text

    p = job.params
    man = pd.read_csv(job.one("manifest"), dtype=str, keep_default_na=False)
    train = set(man.loc[man["split"] == "train", "video_id"]) if "split" in man else set()
    texts = [
        r["text"]
        for path in job.inputs.get("transcripts", [])
        for r in read_table(path).to_pylist()
        if r["video_id"] in train
    ]
    model = fit(texts, p.get("max_features", 2000), p.get("ngram_max", 2), p.get("min_df", 1))
    model["train_ids"] = len(train)
    write_text(job.out, json.dumps(model) + "\n")
    job.log.info("TF-IDF fitted on %d training transcripts: %d terms", len(texts), len(model["vocabulary"]))
