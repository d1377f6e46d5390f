"""Trim leading and trailing silence, by frame energy or by voice activity.

energy (default): frames within --top-db of the loudest frame are speech
(librosa's trim over 512-sample frames, hop 128, in its float32
arithmetic); the kept span gets
--pre-pad / --post-pad seconds and its speech length is rounded up to
--length-multiple samples: Step-Audio's trim_silence with its defaults.
vad: silero-vad's packaged model (offline) finds speech; --split makes
each speech region its own utterance (KEY-START-END, centiseconds).

Writes trimmed audio (like resample) or, with --segments, a Kaldi segments
file (`utt recording start end`, seconds) to OUTPUT (a file or -).
Padding that reaches outside the recording is zeros in audio and clipped
in segments. No item becomes shorter than --min-duration. Samples are written
as 16-bit PCM unless --subtype FLOAT (with --audio-format wav) keeps them exactly.

\b
Example:
  audiotok trim data/train data/train_trim
  audiotok trim --method vad --segments data/train data/train/segments
  audiotok trim --method vad --split --segments scp:wav.scp - > segments

See also: normalize, resample.
"""

from typing import Annotated

import typer

from audiotok.cli import common

NAME = "trim"


def command(
    inputs: common.Inputs,
    output: Annotated[
        str, typer.Argument(metavar="OUTPUT", help="Audio output (ark:-, ark:F, ark,scp:A,S, DIR), or with --segments a file or -.", show_default=False)
    ],
    method: Annotated[str, typer.Option("--method", help="energy or vad.")] = "energy",
    segments: Annotated[bool, typer.Option("--segments", help="Write Kaldi segments to OUTPUT instead of audio.")] = False,
    split: Annotated[bool, typer.Option("--split", help="vad: one utterance per speech region instead of one span.")] = False,
    top_db: Annotated[float, typer.Option("--top-db", min=0.0, help="energy: silence is this many dB below the loudest frame.")] = 20.0,
    frame_length: Annotated[int, typer.Option("--frame-length", min=1, help="energy: frame size in samples.")] = 512,
    hop_length: Annotated[int, typer.Option("--hop-length", min=1, help="energy: frame hop in samples.")] = 128,
    pre_pad: Annotated[float, typer.Option("--pre-pad", min=0.0, help="energy: seconds kept before the speech.")] = 0.05,
    post_pad: Annotated[float, typer.Option("--post-pad", min=0.0, help="energy: seconds kept after the speech.")] = 0.22,
    length_multiple: Annotated[int, typer.Option("--length-multiple", min=1, help="energy: round the speech length up to this many samples.")] = 240,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0, help="vad: speech probability threshold.")] = 0.5,
    min_speech: Annotated[float, typer.Option("--min-speech", min=0.0, help="vad: ignore speech shorter than this (s).")] = 0.25,
    min_silence: Annotated[float, typer.Option("--min-silence", min=0.0, help="vad: silence that ends a region (s).")] = 0.1,
    speech_pad: Annotated[float, typer.Option("--speech-pad", min=0.0, help="vad: seconds added around each region.")] = 0.03,
    min_duration: Annotated[float, typer.Option("--min-duration", min=0.0, help="Never keep less than this many seconds.")] = 0.0,
    channel: common.Channel = None,
    subtype: common.Subtype = "PCM_16",
    audio_format: common.AudioFormat = "flac",
    min_success: common.MinSuccess = 0.95,
    force: common.Force = False,
) -> None:
    from audiotok.dsp import trim as T
    from audiotok.errors import ItemError, UsageError

    if method not in ("energy", "vad"):
        raise UsageError(f"unknown --method {method!r}", "choose energy or vad")
    if split and method != "vad":
        raise UsageError("--split needs --method vad")
    if split and not segments:
        raise UsageError("--split makes several utterances per item: use it with --segments")
    energy = T.EnergyTrim(top_db, frame_length, hop_length, pre_pad, post_pad, length_multiple)
    vad_params = T.VadTrim(threshold, min_speech, min_silence, speech_pad)
    vad = T.SileroVad() if method == "vad" else None

    def regions(audio) -> list[tuple[int, int]]:
        if method == "energy":
            found = [T.energy_region(audio.samples, audio.rate, energy)]
        elif split:
            found = vad.regions(audio.samples, audio.rate, vad_params)
            if not found:
                raise ItemError("no speech found by the voice activity detector")
        else:
            found = [T.vad_region(vad, audio.samples, audio.rate, vad_params)]
        min_samples = int(round(min_duration * audio.rate))
        found = [T.ensure_min_length(r, min_samples, len(audio.samples)) for r in found]
        for region in found:
            T.check_region(region)
        return found

    settings = {"method": method, "split": split, "min_duration": min_duration}
    settings.update(energy.__dict__ if method == "energy" else vad_params.__dict__)
    if segments:
        _write_segments(inputs, output, regions, settings, channel, min_success, force)
        return

    def transform(audio):
        return T.cut_region(audio.samples, regions(audio)[0]), audio.rate

    common.map_audio(
        NAME, inputs, output, transform, settings, channel=channel, min_success=min_success, force=force, audio_format=audio_format, subtype=subtype
    )


def region_key(key: str, start: float, end: float) -> str:
    """`KEY-SSSSSSS-EEEEEEE` in centiseconds, so keys of one recording sort by time."""
    return f"{key}-{int(round(start * 100)):07d}-{int(round(end * 100)):07d}"


def _write_segments(inputs, output, regions, settings, channel, min_success, force):
    from audiotok.io.keys import c_order

    split = settings["split"]

    def describe(item):
        audio = item.load(channel)
        rows = []
        for start, end in regions(audio):
            first = max(0, start) / audio.rate
            last = min(end, len(audio.samples)) / audio.rate
            key = region_key(item.key, first, last) if split else item.key
            rows.append((key, item.recording, item.start + first, item.start + last))
        return "\n".join(f"{k} {rec} {s:.3f} {e:.3f}" for k, rec, s, e in sorted(rows, key=lambda r: c_order(r[0])))

    common.table_report(NAME, inputs, output, describe, settings, min_success=min_success, force=force)
