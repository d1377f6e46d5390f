"""Resample audio to another sample rate, up or down, any rate.

Reads an audio table, writes the same keys at --rate: a wav archive
(ark:-, ark:FILE, ark,scp:A,S) or a directory of audio files plus its
wav.scp (text, utt2spk, ... of a data dir are carried over).

\b
Resamplers (--resampler):
  soxr        libsoxr at --quality; the output length is the input
              duration in output samples, rounded  [default]
  torchaudio  torchaudio.transforms.Resample(rate_in, rate) with its
              defaults, as Step-Audio and S3Tokenizer resample; length
              ceil(samples x rate / rate_in)
--downsample-only fails each item whose rate is below --rate (counted, like
any bad item) instead of upsampling it, as Step-Audio refuses to.
Use --subtype FLOAT --audio-format wav to keep the float32 samples exactly.

\b
Example:
  audiotok resample --rate 16000 data/train data/train_16k
  audiotok resample --rate 16000 scp:wav.scp ark:- | audiotok info ark:-
  audiotok resample --rate 16000 --resampler torchaudio --subtype FLOAT --audio-format wav data/train data/train_16k

See also: trim, normalize, info.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "resample"


def command(
    inputs: common.Inputs,
    output: common.AudioOutput,
    rate: Annotated[int, typer.Option("--rate", "-r", min=1, help="Output sample rate in Hz.")],
    resampler: Annotated[str, typer.Option("--resampler", help="soxr or torchaudio (Step-Audio's and S3Tokenizer's).")] = "soxr",
    quality: Annotated[str, typer.Option("--quality", help="soxr quality: VHQ, HQ, MQ, LQ or QQ.")] = "VHQ",
    downsample_only: Annotated[bool, typer.Option("--downsample-only", help="Fail items below --rate instead of upsampling them.")] = False,
    channel: common.Channel = None,
    subtype: common.Subtype = "PCM_16",
    audio_format: common.AudioFormat = "flac",
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.dsp.resample import RESAMPLERS, resample, resampled_stream
    from audiotok.errors import ItemError, UsageError

    if resampler not in RESAMPLERS:
        raise UsageError(f"unknown --resampler {resampler!r}", f"choose one of {', '.join(RESAMPLERS)}")
    if quality.upper() not in ("VHQ", "HQ", "MQ", "LQ", "QQ"):
        raise UsageError(f"unknown --quality {quality!r}", "choose VHQ, HQ, MQ, LQ or QQ")

    def transform(audio):
        if downsample_only and audio.rate < rate:
            raise ItemError(f"{audio.rate} Hz is below --rate {rate}: not upsampled (--downsample-only)")
        return resample(audio.samples, audio.rate, rate, quality.upper(), method=resampler), rate

    def stream_transform(stream):
        if downsample_only and stream.rate < rate:
            raise ItemError(f"{stream.rate} Hz is below --rate {rate}: not upsampled (--downsample-only)")
        return resampled_stream(stream, rate, quality.upper(), method=resampler)

    settings = {"rate": rate, "resampler": resampler, "downsample_only": downsample_only}
    if resampler == "soxr":
        settings["quality"] = quality.upper()
    common.map_audio(
        NAME,
        inputs,
        output,
        transform,
        settings,
        channel=channel,
        min_success=min_success,
        force=force,
        audio_format=audio_format,
        subtype=subtype,
        stream_transform=stream_transform,
    )
