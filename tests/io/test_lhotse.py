"""lhotse manifests: cuts and recordings in (equal to lhotse's own load_audio), tokens out (read back by lhotse)."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from audiotok.errors import AudiotokError, ItemError
from audiotok.io.audio_table import open_audio_source
from tests.conftest import assert_no_traceback, run_cli, sine, write_audio

lhotse = pytest.importorskip("lhotse")


@pytest.fixture
def manifests(tmp_path):
    """A mono 16 kHz and a stereo 8 kHz recording, two supervisions on the first, one on the
    second; cuts = one cut a supervision (offsets and durations inside the recordings)."""
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    rng = np.random.default_rng(0)
    mono = (sine(220, 16000, 2.0) + rng.normal(0, 0.01, 32000)).astype(np.float32)
    stereo = sine(330, 8000, 1.5, channels=2)
    recordings = RecordingSet.from_recordings(
        [
            Recording.from_file(write_audio(tmp_path / "wav" / "rec1.wav", mono, 16000)),
            Recording.from_file(write_audio(tmp_path / "wav" / "rec2.wav", stereo, 8000)),
        ]
    )
    supervisions = SupervisionSet.from_segments(
        [
            SupervisionSegment("rec1-a", "rec1", start=0.25, duration=0.5, text="hello there", speaker="spk1", language="en"),
            SupervisionSegment("rec1-b", "rec1", start=1.1, duration=0.75, text="second one", speaker="spk2", language="en"),
            SupervisionSegment("rec2-a", "rec2", start=0.3, duration=1.0, channel=[0, 1], text="stereo", speaker="spk3", language="fr"),
        ]
    )
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions).trim_to_supervisions(keep_overlapping=False)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    return tmp_path / "cuts.jsonl.gz", tmp_path / "recordings.jsonl.gz"


def loaded(spec, channel=None) -> dict:
    source, _ = open_audio_source(spec)
    return {item.key: (item, item.load(channel)) for item in source}


def test_cuts_equal_lhotse_load_audio_with_offsets_and_metadata(manifests):
    cuts_path, _ = manifests
    cuts = lhotse.load_manifest(cuts_path)
    for spec in (f"lhotse:{cuts_path}", str(cuts_path)):  # `*cuts*.jsonl.gz` needs no prefix
        items = loaded(spec)
        assert list(items) == [cut.id for cut in cuts]
        for cut in cuts:
            item, audio = items[cut.id]
            expected = cut.load_audio()
            assert audio.rate == cut.sampling_rate and audio.info.channels == expected.shape[0]
            mono = expected[0] if expected.shape[0] == 1 else expected.mean(axis=0, dtype=np.float64).astype(np.float32)
            assert np.array_equal(audio.samples, mono)
            assert (item.recording, item.start, item.end) == (cut.recording_id, cut.start, cut.start + cut.duration)
            assert item.info() == audio.info  # probed from the manifest without decoding
    first, stereo = cuts[0], cuts[2]
    assert first.start == 0.25 and len(items[first.id][1].samples) == 8000
    assert items[first.id][0].metadata == {"text": "hello there", "speaker": "spk1", "language": "en"}
    assert items[stereo.id][0].metadata == {"text": "stereo", "speaker": "spk3", "language": "fr"}
    assert np.array_equal(items[stereo.id][0].load(channel=1).samples, stereo.load_audio()[1])  # --channel 1
    with pytest.raises(ItemError, match="has 1 channel"):
        items[first.id][0].load(channel=1)


def test_recordings_are_one_item_each(manifests):
    _, recordings_path = manifests
    recordings = lhotse.load_manifest(recordings_path)
    items = loaded(str(recordings_path))
    assert list(items) == ["rec1", "rec2"]
    for recording in recordings:
        _, audio = items[recording.id]
        assert np.array_equal(
            audio.samples, recording.load_audio().mean(axis=0, dtype=np.float64).astype(np.float32) if recording.num_channels > 1 else recording.load_audio()[0]
        )
        assert items[recording.id][0].metadata == {}


def test_cuts_of_several_supervisions_join_their_text(tmp_path, manifests):
    from lhotse import CutSet, RecordingSet, SupervisionSet

    cuts_path, recordings_path = manifests
    supervisions = SupervisionSet.from_segments(s for cut in lhotse.load_manifest(cuts_path) for s in cut.supervisions)
    whole = CutSet.from_manifests(recordings=RecordingSet.from_file(recordings_path), supervisions=supervisions)
    whole.to_file(tmp_path / "whole_cuts.jsonl")
    items = loaded(str(tmp_path / "whole_cuts.jsonl"))
    rec1 = next(item for item, _ in items.values() if item.recording == "rec1")
    assert rec1.metadata == {"text": "hello there second one", "speaker": ["spk1", "spk2"], "language": "en"}


def test_a_jsonl_audio_table_named_cuts_stays_one(tmp_path):
    wav = write_audio(tmp_path / "a.wav", sine(440, 16000, 0.2), 16000)
    (tmp_path / "my_cuts.jsonl").write_text(json.dumps({"key": "k1", "audio_path": wav}) + "\n")
    assert list(loaded(str(tmp_path / "my_cuts.jsonl"))) == ["k1"]


def test_a_missing_audio_file_is_a_named_skip_and_bad_manifests_are_errors(manifests, tmp_path):
    cuts_path, _ = manifests
    (cuts_path.parent / "wav" / "rec2.wav").unlink()
    result = run_cli("info", f"lhotse:{cuts_path}", "--min-success", "0.5")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.text.splitlines()] == ["rec1-a", "rec1-b"]
    assert_no_traceback(result.stderr)
    assert f"WARNING audiotok: rec2-a: no such file: {cuts_path.parent / 'wav' / 'rec2.wav'}" in result.stderr and "done 2/3" in result.stderr
    (cuts_path.parent / "wav" / "rec2.wav").write_bytes(b"RIFF and then nothing useful")
    stereo_cut = list(open_audio_source(f"lhotse:{cuts_path}")[0])[2]
    with pytest.raises(ItemError, match="^lhotse cannot load the audio: Reading audio from .*rec2.wav' failed. Details: Exception #0"):
        stereo_cut.load()
    with gzip.open(tmp_path / "sup.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"id": "s", "recording_id": "r", "start": 0, "duration": 1, "channel": 0}) + "\n")
    with pytest.raises(AudiotokError, match="is a lhotse SupervisionSet, which holds no audio"):
        open_audio_source(f"lhotse:{tmp_path / 'sup.jsonl.gz'}")
    (tmp_path / "junk_cuts.jsonl").write_text('{"not": "lhotse"}\n')
    with pytest.raises(AudiotokError, match="is not a lhotse manifest"):
        open_audio_source(f"lhotse:{tmp_path / 'junk_cuts.jsonl'}")
    missing = run_cli("info", f"lhotse:{tmp_path / 'nothing.jsonl.gz'}")
    assert missing.returncode == 1
    assert_no_traceback(missing.stderr)
    assert missing.stderr.strip().splitlines()[-1].startswith("error: no such lhotse manifest")


# ---------------------------------------------------------------- tokens out


def test_attach_tokens_round_trip_through_lhotse(manifests, tmp_path):
    from lhotse.array import TemporalArray
    from lhotse.dataset.collation import collate_custom_field

    from audiotok.io.lhotse_io import attach_tokens

    cuts_path, _ = manifests
    cuts = lhotse.load_manifest(cuts_path)
    rng = np.random.default_rng(1)
    tokens = {cut.id: rng.integers(0, 4096, size=int(cut.duration * 50) + 1).astype(np.int32) for cut in cuts[:2]}
    tokens["stray"] = np.arange(3)
    report = attach_tokens(cuts_path, tokens, tmp_path / "out" / "cuts_tokens.jsonl.gz")
    assert report.written == 2 and report.without_tokens == [cuts[2].id] and report.unused_keys == ["stray"]
    assert Path(report.storage_path) == tmp_path / "out" / "cuts_tokens_audio_tokens"
    back = lhotse.load_manifest(tmp_path / "out" / "cuts_tokens.jsonl.gz")
    assert [cut.id for cut in back] == [cut.id for cut in cuts]
    for cut in back[:2]:
        assert isinstance(cut.custom["audio_tokens"], TemporalArray)
        read = cut.load_audio_tokens()
        assert read.dtype == np.int32 and np.array_equal(read, tokens[cut.id])
    assert back[2].custom is None or "audio_tokens" not in back[2].custom
    padded, lengths = collate_custom_field(back.subset(first=2), "audio_tokens", pad_value=-1)
    assert lengths.tolist() == [len(tokens[cut.id]) for cut in cuts[:2]]
    assert padded[1, : lengths[1]].tolist() == tokens[cuts[1].id].tolist()


def test_attach_tokens_at_a_frame_rate_lists_cuts_lhotse_would_cut_short(manifests, tmp_path):
    from audiotok.io.lhotse_io import attach_tokens

    cuts_path, _ = manifests
    cuts = lhotse.load_manifest(cuts_path)
    tokens = {cut.id: np.arange(round(cut.duration * 25) + (2 if i == 1 else 0)).reshape(-1, 1).repeat(2, axis=1) for i, cut in enumerate(cuts)}
    report = attach_tokens(cuts, tokens, tmp_path / "cuts.jsonl", field="codes", frame_rate=25)
    assert report.written == 3 and report.cut_short == [cuts[1].id] and report.without_tokens == []
    back = lhotse.load_manifest(tmp_path / "cuts.jsonl")
    assert back[0].custom["codes"].frame_shift == 0.04
    assert np.array_equal(back[0].load_codes(), tokens[cuts[0].id])
    assert np.array_equal(back[1].custom["codes"].load(), tokens[cuts[1].id])  # all stored; the cut's span holds 2 fewer
    assert len(back[1].load_codes()) == len(tokens[cuts[1].id]) - 2
    with pytest.raises(AudiotokError, match="written as .jsonl or .jsonl.gz"):
        attach_tokens(cuts, tokens, tmp_path / "cuts.json")
