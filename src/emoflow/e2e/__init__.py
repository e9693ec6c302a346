"""End-to-end multimodal network (experiment kind ``e2e``): an audio branch on a frame-level
audio feature (log-mel by default) and a face branch on a frame-level face feature (the
frame CNN's per-frame trunk features, optionally under the 12 cached face test-time
transforms), each pooled over time (BiLSTM + attention by default), a fused head and
auxiliary per-branch heads, trained jointly with mixup, CutMix on the face sequence,
SpecAugment, frame and modality dropout and label smoothing; an ensemble of seeds.

Modules: :mod:`.spec` (the config entry and its defaults), :mod:`.augment` (mixup, CutMix,
SpecAugment, frame dropout, the face transforms), :mod:`.model` (the network, save/load),
:mod:`.data` (reading the cached workflow tables), :mod:`.fit` (training, epochs chosen on
held-out training speakers, refit, ensemble), :mod:`.stage` (the rule ``e2e``),
:mod:`.tta` (the rule ``e2e_tta``: the frame CNN's features of every crop under each face
transform).
"""
