"""Spectral frame features with librosa: MFCCs with deltas, and log-mel energies
(25 ms windows, 10 ms hop at 16 kHz by default)."""

from __future__ import annotations

import numpy as np

from emoflow.features.base import Extractor, Output


class _Frames(Extractor):
    level = "frame"

    def _times(self, n: int, rate: int) -> np.ndarray:
        return np.arange(n) * self.params["hop"] / rate


class MFCC(_Frames):
    defaults = {"n_mfcc": 13, "deltas": 2, "n_fft": 400, "hop": 160, "n_mels": 40}

    @property
    def dim(self) -> int:
        return self.params["n_mfcc"] * (1 + self.params["deltas"])

    def extract(self, item) -> Output:
        import librosa

        y, sr = item
        p = self.params
        m = librosa.feature.mfcc(
            y=np.asarray(y, np.float32),
            sr=sr,
            n_mfcc=p["n_mfcc"],
            n_fft=p["n_fft"],
            hop_length=p["hop"],
            n_mels=p["n_mels"],
        )
        feats = [m]
        for order in range(1, p["deltas"] + 1):
            width = min(9, m.shape[1] if m.shape[1] % 2 else m.shape[1] - 1)
            feats.append(librosa.feature.delta(m, order=order, width=width) if width >= 3 else np.zeros_like(m))
        out = np.concatenate(feats).T
        return Output(out, self._times(len(out), sr))


class LogMel(_Frames):
    defaults = {"n_mels": 64, "n_fft": 400, "hop": 160, "fmin": 60.0, "fmax": 7800.0}

    @property
    def dim(self) -> int:
        return self.params["n_mels"]

    def extract(self, item) -> Output:
        y, sr = item
        out = log_mel(y, sr, **self.params).T
        return Output(out, self._times(len(out), sr))


def log_mel(y, sr, n_mels=64, n_fft=400, hop=160, fmin=60.0, fmax=7800.0) -> np.ndarray:
    """(n_mels, frames) log(mel power + 1e-6)."""
    import librosa

    s = librosa.feature.melspectrogram(
        y=np.asarray(y, np.float32),
        sr=sr,
        n_fft=n_fft,
        hop_length=hop,
        n_mels=n_mels,
        fmin=fmin,
        fmax=min(fmax, sr / 2),
    )
    return np.log(s + 1e-6).astype(np.float32)
