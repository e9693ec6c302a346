"""Emotional speech from espeak-ng: class-specific prosody (pitch, rate, loudness,
sentence-final intonation) on top of a per-speaker voice, so the class is learnable
from the voice across speakers."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from emoflow.errors import EmoflowError

# espeak-ng settings per class: pitch (0-99), words per minute, amplitude, final punctuation
PROSODY = {
    "neutral": (50, 150, 100, "."),
    "happy": (72, 178, 150, "!"),
    "sad": (24, 112, 70, "."),
    "surprise": (88, 150, 135, "?"),
    "angry": (42, 192, 190, "!"),
}
VOICES = ["m1", "f1", "m3", "f2", "m2", "f3", "m4", "f4", "m5", "f5", "m6", "m7", "david", "linda", "john", "belinda"]


def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:  # a system package: conda-forge has none (envs/README.md)
        raise EmoflowError(
            "espeak-ng not found on PATH: the demo's speech needs the system package espeak-ng "
            "(Debian/Ubuntu: `sudo apt install espeak-ng`, which scripts/setup.sh runs; Fedora: "
            "`sudo dnf install espeak-ng`; macOS: `brew install espeak-ng`). conda cannot provide it: "
            "conda-forge has no espeak-ng package, so the conda envs do not include it"
        )
    return path


def synthesize(text: str, label: str, speaker: int, rng: np.random.Generator, sample_rate: int = 22050) -> np.ndarray:
    """float32 mono speech at ``sample_rate`` (espeak-ng's native 22050 Hz)."""
    pitch, wpm, amp, punct = PROSODY[label]
    voice_rng = np.random.default_rng(1000 + speaker)  # the speaker's own offsets
    pitch += int(voice_rng.integers(-12, 13)) + int(rng.integers(-4, 5))
    wpm += int(voice_rng.integers(-15, 16)) + int(rng.integers(-6, 7))
    amp += int(rng.integers(-8, 9))
    voice = f"en-us+{VOICES[speaker % len(VOICES)]}"
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        cmd = [
            espeak(),
            "-v",
            voice,
            "-p",
            str(int(np.clip(pitch, 0, 99))),
            "-s",
            str(wpm),
            "-a",
            str(amp),
            "-w",
            str(wav),
            "--",
            text + punct,
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        from emoflow.media.audio import read_wav

        samples, rate = read_wav(wav)
    if rate != sample_rate:
        raise EmoflowError(f"espeak-ng wrote {rate} Hz, expected {sample_rate}")
    return samples
