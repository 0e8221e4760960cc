"""Front-ends (log-mel, waveform) and the feature cache."""

from earshot.features.frontends import BandStats, LogMel, LogMelConfig, Normalize, mel_filterbank

__all__ = ["BandStats", "LogMel", "LogMelConfig", "Normalize", "mel_filterbank"]
