"""Normalise the level of each item.

\b
Methods (--target default in brackets):
  peak      Step-Audio's energy norm: x / max(max|x|, 0.01) * target  [0.999]
  volume    BiCodec's percentile volume norm, coefficient target      [0.2]
  rms       RMS level in dBFS                                         [-20]
  loudness  integrated loudness, ITU-R BS.1770 (pyloudnorm), LUFS     [-23]
rms and loudness then scale down any peak above --peak-limit. Samples are
written as 16-bit PCM unless --subtype FLOAT (with --audio-format wav)
keeps them exactly, as Step-Audio keeps them in float32.

\b
Example:
  audiotok normalize --method peak data/train data/train_norm
  audiotok normalize --method loudness --target -23 scp:wav.scp ark:- | audiotok info ark:-

See also: trim, resample, info.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "normalize"
DEFAULT_TARGETS = {"peak": 0.999, "volume": 0.2, "rms": -20.0, "loudness": -23.0}


def command(
    inputs: common.Inputs,
    output: common.AudioOutput,
    method: Annotated[str, typer.Option("--method", help="peak, volume, rms or loudness.")] = "peak",
    target: Annotated[float | None, typer.Option("--target", help="Target level; its unit depends on --method.")] = None,
    peak_limit: Annotated[float, typer.Option("--peak-limit", min=0.0, help="rms/loudness: largest |sample| allowed.")] = 1.0,
    channel: common.Channel = None,
    subtype: common.Subtype = "PCM_16",
    audio_format: common.AudioFormat = "flac",
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.dsp import normalize as N
    from audiotok.errors import UsageError

    if method not in DEFAULT_TARGETS:
        raise UsageError(f"unknown --method {method!r}", f"choose one of {', '.join(DEFAULT_TARGETS)}")
    level = DEFAULT_TARGETS[method] if target is None else target
    if method in ("peak", "volume") and level <= 0:
        raise UsageError(f"--target for {method} must be positive, got {level:g}")

    def transform(audio):
        x, rate = audio.samples, audio.rate
        if method == "peak":
            return N.peak_normalize(x, level), rate
        if method == "volume":
            return N.volume_normalize(x, level), rate
        scaled = N.rms_normalize(x, level) if method == "rms" else N.loudness_normalize(x, rate, level)
        return N.limit_peak(scaled, peak_limit), rate

    settings = {"method": method, "target": level, "peak_limit": peak_limit}
    common.map_audio(
        NAME, inputs, output, transform, settings, channel=channel, min_success=min_success, force=force, audio_format=audio_format, subtype=subtype
    )
