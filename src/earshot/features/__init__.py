"""Front-ends (log-mel, waveform) and the feature cache."""

from earshot.features.frontends import (BandStats, LogMel, LogMelConfig, LogMelInput, Normalize, Waveform,
                                        WaveformConfig, mel_filterbank)

__all__ = ["BandStats", "LogMel", "LogMelConfig", "LogMelInput", "Normalize", "Waveform", "WaveformConfig",
           "mel_filterbank"]
