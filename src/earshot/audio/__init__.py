"""Decoding, resampling and mixing audio. No torch.nn here."""

from earshot.audio.io import AUDIO_EXTENSIONS, AudioInfo, fix_length, load_audio, probe_audio, resample, to_mono

__all__ = ["AUDIO_EXTENSIONS", "AudioInfo", "fix_length", "load_audio", "probe_audio", "resample", "to_mono"]
