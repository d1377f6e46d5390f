"""Report the quality of a table of discrete units: codebook use, entropy, bit rates, phone purity, PNMI.

Reads UNITS (`key 12 12 407 ...` lines, jsonl:FILE, or - for stdin) and
prints one `name value` line per statistic (--format json: one JSON object).
k and the frame rate come from --bundle (the tokenizer's config.json) or
--k and --frame-rate; without k the largest code + 1 is taken. Rates need
the frame rate.

--alignments (Praat TextGrids or a directory of them, Kaldi CTM, `utt start
end phone` lines, HTK .lab, SpeechBrain TSV) adds phone purity, cluster
purity and PNMI as HuBERT defines them, from the phone at each frame's
centre; with --abx, the ABX error rates of the units (see `audiotok abx`),
scored as one-hot vectors or, with --abx-vectors centroids, as their
centroids. --compare adds the token parity with a second unit table. --plots
DIR draws the code usage and, with --audio, one utterance's spectrogram with
its units under it.

\b
Example:
  audiotok report --bundle exp/km500 units.txt
  audiotok report --k 500 --frame-rate 50 --alignments data/train/textgrids units.txt
  audiotok report --bundle exp/km500 --format json - < units.txt
  audiotok report --bundle exp/km500 --alignments ali.ctm --abx --utt2spk data/dev/utt2spk units.txt
  audiotok report --bundle exp/km500 --compare units.ref.txt --plots plots --audio data/train units.txt

See also: abx, sweep-table, quantize, tokenize, fit-kmeans.
"""

from typing import Annotated

import typer

from audiotok.cli import abx as abx_options
from audiotok.cli import common

NAME = "report"
FORMATS = ("text", "json")
STDIN = ("-", "ark:-", "ark,t:-", "jsonl:-")


def command(
    units: Annotated[
        str, typer.Argument(metavar="UNITS", help="Unit table: `key int int ...` lines (FILE, ark,t:FILE), jsonl:FILE, or - for stdin.", show_default=False)
    ],
    k: Annotated[int | None, typer.Option("--k", min=1, help="Codebook size (default: from --bundle, else the largest code + 1).")] = None,
    bundle: Annotated[str | None, typer.Option("--bundle", metavar="DIR", help="Tokenizer bundle giving k and the frame rate.")] = None,
    frame_rate: Annotated[float | None, typer.Option("--frame-rate", metavar="HZ", help="Units per second (default: from --bundle).")] = None,
    alignments: Annotated[
        list[str] | None, typer.Option("--alignments", metavar="PATH", help="Phone alignments: a file or a directory of TextGrids; repeatable.")
    ] = None,
    alignment_format: abx_options.AlignmentFormat = "auto",
    abx: Annotated[bool, typer.Option("--abx", help="With --alignments: add the ABX error rates of the units.")] = False,
    abx_vectors: Annotated[str, typer.Option("--abx-vectors", help="ABX on onehot codes or on the bundle's centroids.")] = "onehot",
    utt2spk: abx_options.Utt2spk = None,
    speaker_pattern: abx_options.SpeakerPattern = None,
    conditions: abx_options.Conditions = "all",
    distance: abx_options.Distance = "cosine",
    phone_map: abx_options.PhoneMap = None,
    fold_phones: abx_options.FoldPhones = False,
    exclude_phones: abx_options.ExcludePhones = None,
    compare: Annotated[str | None, typer.Option("--compare", metavar="UNITS2", help="A second unit table to compare token by token.")] = None,
    plots: Annotated[str | None, typer.Option("--plots", metavar="DIR", help="Write code_usage.png here (and units_KEY.png with --audio).")] = None,
    audio: Annotated[str | None, typer.Option("--audio", metavar="INPUT", help="Audio table holding the plotted utterance (data dir, scp:, files...).")] = None,
    plot_key: Annotated[str | None, typer.Option("--plot-key", metavar="KEY", help="Utterance to plot with --audio (default: the first of UNITS).")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text (`name value` lines) or json (one object).")] = "text",
    output: common.TextOutputOption = "-",
    force: common.Force = False,
) -> None:
    import logging

    from audiotok.errors import AudiotokError, UsageError
    from audiotok.io.outputs import TextOutput, make_signature
    from audiotok.io.tables import read_unit_table
    from audiotok.units import report
    from audiotok.units.alignments import FORMATS as ALIGNMENT_FORMATS
    from audiotok.units.alignments import read_alignments

    log = logging.getLogger("audiotok")
    if output_format not in FORMATS:
        raise UsageError(f"unknown --format {output_format!r}", f"choose one of {', '.join(FORMATS)}")
    if alignment_format not in ALIGNMENT_FORMATS:
        raise UsageError(f"unknown --alignment-format {alignment_format!r}", f"choose one of {', '.join(ALIGNMENT_FORMATS)}")
    if sum(spec in STDIN for spec in (units, compare, audio)) > 1:
        raise UsageError("only one input can be read from stdin")
    if audio and not plots:
        raise UsageError("--audio is only for the spectrogram plot", "add --plots DIR")
    if plot_key and not audio:
        raise UsageError("--plot-key needs --audio to plot")
    if abx and not alignments:
        raise UsageError("--abx needs the phone alignments", "give --alignments PATH")
    if abx_vectors == "centroids" and not bundle:
        raise UsageError("--abx-vectors centroids needs the codebook", "give --bundle DIR")
    abx_settings = abx_options.make_settings(conditions, distance, utt2spk, speaker_pattern, phone_map, fold_phones, exclude_phones) if abx else None
    if abx_settings:
        abx_settings.check()
    k, frame_rate, loaded_bundle = _codebook(k, bundle, frame_rate)
    if frame_rate is None and (alignments or audio):
        raise UsageError(f"{'--alignments' if alignments else '--audio'} needs the frame rate of the units", "give --frame-rate HZ or --bundle DIR")

    signature = make_signature(
        NAME,
        units=units,
        k=k,
        bundle=bundle,
        frame_rate=frame_rate,
        alignments=alignments,
        alignment_format=alignment_format,
        compare=compare,
        plots=plots,
        audio=audio,
        plot_key=plot_key,
        format=output_format,
        **({"abx": abx_settings.signature(), "abx_vectors": abx_vectors} if abx else {}),
    )
    target = TextOutput(output, signature, force)
    table = read_unit_table(units)
    if k is None:
        k = report.smallest_k(table)
        log.info("no --k or --bundle: taking k = largest code + 1 = %d", k)
    results = report.unit_summary(table, k, frame_rate)
    log.info("%d utterances, %d tokens from %s", results["utterances"], results["tokens"], units)
    if frame_rate is None:
        log.info("no --frame-rate or --bundle: rates left out")

    if alignments:
        phones = read_alignments(alignments, alignment_format)
        phone_stats = report.phone_unit_stats(table, phones, frame_rate)
        if phone_stats["aligned_utterances"] == 0:
            raise AudiotokError(f"no key of {units} has an alignment", "alignment keys are utterance ids (TextGrid, .lab: the file name without extension)")
        results.update(phone_stats)
        if abx:
            from audiotok.abx.evaluate import evaluate, unit_vectors

            centroids = loaded_bundle.centroids if abx_vectors == "centroids" else None
            results.update(evaluate(unit_vectors(table, k, abx_vectors, centroids), frame_rate, phones, abx_settings))
    if compare:
        parity = report.compare_units(table, read_unit_table(compare))
        for name in ("only_in_units", "only_in_compare", "length_mismatches"):
            keys = parity[name]
            if keys:
                log.warning("%s: %d utterance(s): %s", name.replace("_", " "), len(keys), ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else ""))
            parity[name] = len(keys)
        results.update(parity)
    if plots:
        _plot(plots, table, k, frame_rate, audio, plot_key)

    common.write_results(target, results, output_format)


def _codebook(k, bundle, frame_rate):
    """k and frame rate from the options or the bundle (None where neither says), and the loaded bundle."""
    from audiotok.errors import UsageError
    from audiotok.units.bundle import Bundle

    if frame_rate is not None and frame_rate <= 0:
        raise UsageError(f"--frame-rate must be positive, got {frame_rate:g}")
    if bundle is None:
        return k, frame_rate, None
    if k is not None:
        raise UsageError("give --k or --bundle, not both", "the bundle knows its k")
    loaded = Bundle.load(bundle)
    recorded = loaded.recipe.get("frame_rate")
    if frame_rate is not None and recorded is not None and float(recorded) != frame_rate:
        raise UsageError(f"--frame-rate {frame_rate:g} contradicts the bundle's frame rate {recorded}", "leave --frame-rate out")
    if frame_rate is None and recorded is not None:
        frame_rate = float(recorded)
    return loaded.k, frame_rate, loaded


def _plot(directory, table, k, frame_rate, audio, plot_key):
    import logging
    from pathlib import Path

    from audiotok.errors import AudiotokError, ItemError, UsageError
    from audiotok.io.audio_table import open_audio_source
    from audiotok.io.keys import safe_file_name
    from audiotok.units import report

    log = logging.getLogger("audiotok")
    sound = None
    if audio:  # find the recording first, so a wrong key fails before anything is drawn
        key = plot_key or next(iter(table))
        if key not in table:
            raise UsageError(f"--plot-key {key!r} is not in the unit table")
        name = safe_file_name(key)
        if name is None:
            raise UsageError(f"key {key!r} cannot name a file", "pick another --plot-key")
        source, _ = open_audio_source(audio)
        item = next((item for item in source if item.key == key), None)
        if item is None:
            raise AudiotokError(f"{audio} has no utterance {key!r}", "give the audio the units were made from, or another --plot-key")
        try:
            sound = item.load()
        except ItemError as err:
            raise AudiotokError(f"{key}: {err}") from None
    Path(directory).mkdir(parents=True, exist_ok=True)
    usage = Path(directory, "code_usage.png")
    report.plot_code_usage(report.code_counts(table, k), usage)
    log.info("wrote %s", usage)
    if sound is not None:
        path = Path(directory, f"units_{name}.png")
        report.plot_units_spectrogram(sound.samples, sound.rate, table[key], frame_rate, path, title=key)
        log.info("wrote %s", path)
