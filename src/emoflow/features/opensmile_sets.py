"""openSMILE feature sets through its Python API (no SMILExtract binary needed):
IS09 (384 functionals), IS10 (1582), IS11 (4368), IS12 (6125), IS13 / ComParE_2016 (6373),
eGeMAPSv02 (88); ``level: functionals`` gives one vector per utterance, ``level: lld``
the frame-level low-level descriptors (10 ms hop) with their times."""

from __future__ import annotations

import numpy as np

from emoflow.features.base import Extractor, Output

SETS = ("IS09", "IS10", "IS11", "IS12", "IS13", "eGeMAPSv02", "ComParE_2016", "emobase")


class OpenSmile(Extractor):
    defaults = {"feature_set": "eGeMAPSv02", "level": "functionals"}

    def setup(self) -> None:
        import opensmile

        fs, lvl = self.params["feature_set"], self.params["level"]
        if fs not in SETS:
            raise ValueError(f"openSMILE feature_set {fs!r} is not one of {', '.join(SETS)}")
        if lvl not in ("functionals", "lld"):
            raise ValueError(f"openSMILE level must be 'functionals' or 'lld', not {lvl!r}")
        level = (
            opensmile.FeatureLevel.Functionals if lvl == "functionals" else opensmile.FeatureLevel.LowLevelDescriptors
        )
        self.smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, fs), feature_level=level)
        self.level = "video" if lvl == "functionals" else "frame"
        self.names = list(self.smile.feature_names)

    @property
    def dim(self) -> int:
        return len(self.names)

    def extract(self, item) -> Output:
        samples, rate = item
        df = self.smile.process_signal(np.asarray(samples, np.float32), rate)
        values = df.to_numpy(np.float32)
        if self.level == "video":
            return Output(values[0])
        starts = df.index.get_level_values("start").total_seconds().to_numpy()
        return Output(values, starts)
