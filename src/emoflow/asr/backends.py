"""ASR backends. A backend turns 16 kHz mono float samples into (text, confidence).

``pocketsphinx``: CMU PocketSphinx with its bundled US-English acoustic model, language
model and dictionary (they ship in the PyPI package; nothing is downloaded).  To plug in
another engine with local weights, subclass :class:`Backend`, implement ``transcribe``
and register it in ``BACKENDS``.
"""

from __future__ import annotations

import numpy as np

FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]"}


class Backend:
    name = "base"

    def __init__(self, **params):
        self.params = params

    def transcribe(self, samples: np.ndarray, rate: int) -> tuple[str, float]:
        raise NotImplementedError


class PocketSphinx(Backend):
    name = "pocketsphinx"

    def __init__(self, hmm=None, lm=None, dict=None, **params):  # noqa: A002 - pocketsphinx's names
        super().__init__(**params)
        from pocketsphinx import Decoder

        kw = {k: v for k, v in {"hmm": hmm, "lm": lm, "dict": dict}.items() if v}
        self.rate = 16000
        self.decoder = Decoder(samprate=self.rate, **kw)

    def transcribe(self, samples, rate):
        if rate != self.rate:
            raise ValueError(f"pocketsphinx expects {self.rate} Hz audio, got {rate} Hz")
        pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype("<i2").tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return "", 0.0
        words = [s for s in d.seg() if s.word not in FILLERS]
        probs = [float(np.clip(s.prob, 0.0, 1.0)) for s in words if hasattr(s, "prob")]
        confidence = float(np.mean(probs)) if probs else float(np.clip(hyp.prob, 0.0, 1.0))
        return hyp.hypstr.strip(), confidence


BACKENDS = {"pocketsphinx": PocketSphinx}


def make(name: str, **params) -> Backend:
    try:
        return BACKENDS[name](**params)
    except KeyError:
        raise ValueError(f"unknown ASR backend {name!r} (known: {', '.join(BACKENDS)})") from None


def word_error_rate(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) by Levenshtein distance over lower-cased words."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)
