"""Resample audio to another sample rate (libsoxr, up or down, any rate).

Reads an audio table, writes the same keys at --rate: a wav archive
(ark:-, ark:FILE, ark,scp:A,S) or a directory of audio files plus its
wav.scp (text, utt2spk, ... of a data dir are carried over). The length of
each output is the input duration in output samples, rounded.

\b
Example:
  audiotok resample --rate 16000 data/train data/train_16k
  audiotok resample --rate 16000 scp:wav.scp ark:- | audiotok info ark:-

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
    quality: Annotated[str, typer.Option("--quality", help="soxr quality: VHQ, HQ, MQ, LQ or QQ.")] = "VHQ",
    channel: common.Channel = None,
    subtype: common.Subtype = "PCM_16",
    audio_format: common.AudioFormat = "flac",
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.dsp.resample import resample
    from audiotok.errors import UsageError

    if quality.upper() not in ("VHQ", "HQ", "MQ", "LQ", "QQ"):
        raise UsageError(f"unknown --quality {quality!r}", "choose VHQ, HQ, MQ, LQ or QQ")

    def transform(audio):
        return resample(audio.samples, audio.rate, rate, quality.upper()), rate

    common.map_audio(
        NAME, inputs, output, transform, {"rate": rate, "quality": quality.upper()},
        channel=channel, min_success=min_success, force=force, audio_format=audio_format, subtype=subtype,
    )
