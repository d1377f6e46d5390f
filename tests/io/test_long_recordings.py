"""Long recordings are read block by block, with outputs equal byte for byte to reading them whole.

The length above which the blocked path runs is lowered through AUDIOTOK_LONG_SECONDS so that
a 70 s generated signal takes it (three 30 s blocks)."""

import os

import numpy as np
import pytest

from audiotok.io.audio import LONG_SECONDS_VARIABLE, AudioStream, decode, open_stream
from tests.conftest import write_audio

LONG = {LONG_SECONDS_VARIABLE: "60"}


def speechlike(rate: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Voiced-like harmonics under a slow syllable envelope, with pauses and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) * (np.sin(2 * np.pi * 0.1 * t) > -0.6)
    x = 0.2 * envelope * voiced + rng.normal(0, 0.003, len(t))
    x = x.astype(np.float32)
    return x if channels == 1 else np.stack([x, 0.5 * np.roll(x, 37)], axis=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    files = [
        write_audio(root / "a_long16k.wav", speechlike(16000, 70.0), 16000, subtype="PCM_16"),
        write_audio(root / "b_long44k.flac", speechlike(44100, 70.0, channels=2, seed=1), 44100, subtype="PCM_24"),
        write_audio(root / "c_short.wav", speechlike(16000, 3.0, seed=2), 16000),
    ]
    scp = root / "wav.scp"
    scp.write_text("".join(f"{path.rsplit('/', 1)[1].split('.')[0]} {path}\n" for path in files))
    return root, scp


def test_blocks_join_to_the_decoded_samples(corpus, monkeypatch):
    root, _ = corpus
    monkeypatch.setenv(LONG_SECONDS_VARIABLE, "60")
    for name, channel in (("a_long16k.wav", None), ("b_long44k.flac", None), ("b_long44k.flac", 1)):
        stream = open_stream(root / name, channel)
        assert isinstance(stream, AudioStream)
        joined = np.concatenate(list(stream.blocks(12345)))
        assert np.array_equal(joined, decode(root / name, channel).samples)
    assert open_stream(root / "c_short.wav") is None  # short recordings are decoded whole


def test_resampled_and_feature_streams_equal_the_whole(corpus, monkeypatch):
    from audiotok.dsp.front_end import SEED004, FrontEnd
    from audiotok.dsp.resample import resample
    from audiotok.units.features import KaldiFeatures

    root, _ = corpus
    monkeypatch.setenv(LONG_SECONDS_VARIABLE, "60")
    stream = open_stream(root / "b_long44k.flac")
    whole = decode(root / "b_long44k.flac").samples
    for quality in ("VHQ", "HQ"):
        resampled = FrontEnd("test", quality=quality).stream(stream, 16000)
        expected = resample(whole, 44100, 16000, quality)
        assert len(resampled) == len(expected)
        assert np.array_equal(np.concatenate(list(resampled.blocks())), expected)
    assert SEED004.stream(stream, 16000) is None  # trimming needs the whole recording
    features = KaldiFeatures("mfcc", add_deltas=True)
    padded = FrontEnd("pad", pad=SEED004.pad).stream(stream, 16000)
    assert np.array_equal(features.stream(padded), features(FrontEnd("pad", pad=SEED004.pad)(whole, 44100, 16000)))


def test_a_bad_block_fails_its_item_as_decoding_does(tmp_path, monkeypatch):
    monkeypatch.setenv(LONG_SECONDS_VARIABLE, "60")
    x = speechlike(8000, 65.0)
    x[100_000] = np.nan
    path = write_audio(tmp_path / "nan.wav", x, 8000, subtype="FLOAT")
    from audiotok.errors import ItemError

    truncated = write_audio(tmp_path / "cut.flac", speechlike(8000, 65.0), 8000)
    with open(truncated, "r+b") as handle:
        handle.truncate(int(os.path.getsize(truncated) * 0.7))
    for bad in (path, truncated):
        with pytest.raises(ItemError) as whole:
            decode(bad)
        with pytest.raises(ItemError) as blocked:
            list(open_stream(bad).blocks())
        assert str(blocked.value) == str(whole.value)


def _same_output(cli, tmp_path, *args, output_name="out.txt", to_file=True):
    outputs = []
    for env in ({}, LONG):
        target = tmp_path / f"{len(outputs)}-{output_name}"
        result = cli(*[str(a).replace("OUT", str(target)) for a in args], env=env)
        assert result.returncode == 0, result.stderr
        outputs.append(target.read_bytes() if to_file else result.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0]
    return outputs[0]


def test_info_table_is_the_same(cli, corpus, tmp_path):
    _, scp = corpus
    table = _same_output(cli, tmp_path, "info", "--format", "tsv", f"scp:{scp}", to_file=False)
    assert b"b_long44k\t44100\t2\t3087000" in table


@pytest.mark.parametrize("kind", ["mfcc", "fbank"])
def test_extract_feats_ark_is_the_same(cli, corpus, tmp_path, kind):
    _, scp = corpus
    _same_output(cli, tmp_path, "extract-feats", "--backend", kind, "--deltas", f"scp:{scp}", "ark:OUT", output_name="feats.ark")


def test_tokenize_with_an_mfcc_bundle_is_the_same(cli, corpus, tmp_path):
    _, scp = corpus
    feats = tmp_path / "feats.ark"
    assert cli("extract-feats", "--backend", "mfcc", f"scp:{scp}", f"ark:{feats}").returncode == 0
    bundle = tmp_path / "bundle"
    fitted = cli("fit-kmeans", "--k", "8", "--seed", "1", f"ark:{feats}", bundle)
    assert fitted.returncode == 0, fitted.stderr
    units = _same_output(cli, tmp_path, "tokenize", bundle, f"scp:{scp}", "-o", "OUT")
    assert units.count(b"\n") == 3


def test_resample_ark_is_the_same(cli, corpus, tmp_path):
    _, scp = corpus
    _same_output(cli, tmp_path, "resample", "--rate", "8000", f"scp:{scp}", "ark:OUT", output_name="audio.ark")


@pytest.mark.parametrize("audio_format", ["flac", "wav"])
def test_resample_directory_is_the_same(cli, corpus, tmp_path, audio_format):
    _, scp = corpus
    outputs = []
    for env in ({}, LONG):
        out = tmp_path / f"{audio_format}{len(outputs)}"
        result = cli("resample", "--rate", "22050", "--audio-format", audio_format, f"scp:{scp}", out, env=env)
        assert result.returncode == 0, result.stderr
        outputs.append({path.name: path.read_bytes() for path in sorted((out / "audio").iterdir())})
    assert len(outputs[0]) == 3
    assert outputs[0] == outputs[1]


def test_encoder_windows_from_a_stream_equal_the_whole(corpus, monkeypatch, tiny_hubert):
    """An encoder's windows cut from the blocks give the features (and per-window units) of the whole."""
    from audiotok.engine import batching
    from audiotok.engine.batching import extract_features
    from audiotok.io.audio_table import open_audio_source
    from audiotok.tokenizers.features import open_backend
    from audiotok.units.assign import NearestCentroid

    _, scp = corpus
    backend = open_backend(backend="model", model=str(tiny_hubert), layer=2, device="cpu")
    centroids = NearestCentroid(np.random.default_rng(0).normal(size=(16, backend.dim)).astype(np.float32))

    def run(per_frame=None):
        source, _ = open_audio_source(f"scp:{scp}")
        return dict(extract_features(list(source), backend, batch_seconds=70.0, window_seconds=20.0, overlap_seconds=1.0, per_frame=per_frame))

    whole = run()
    monkeypatch.setenv(LONG_SECONDS_VARIABLE, "60")
    read = []
    original = batching.StreamWindows.read
    monkeypatch.setattr(batching.StreamWindows, "read", lambda self, index: read.append(index) or original(self, index))
    blocked, units = run(), run(centroids)
    assert read == [0, 1, 2, 3] * 4  # two long recordings of four 20 s windows, twice
    assert list(blocked) == list(whole) == ["a_long16k", "b_long44k", "c_short"]
    for key, features in whole.items():
        assert np.array_equal(blocked[key], features)
        assert np.array_equal(units[key], centroids(features))


def test_extract_feats_encoder_ark_is_the_same(cli, corpus, tmp_path, tiny_hubert):
    _, scp = corpus
    # The 44.1 kHz stereo recording (resampled as a stream, windows cut from blocks) and a short one: the encoder is the slow part.
    lines = [line for line in scp.read_text().splitlines() if not line.startswith("a_long16k ")]
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    _same_output(
        cli, tmp_path, "extract-feats", "--device", "cpu", "--model", tiny_hubert, "--layer", "2", "--window", "20", f"scp:{tmp_path / 'wav.scp'}", "ark:OUT"
    )


@pytest.fixture(scope="module")
def s3_weights(tmp_path_factory):
    from tests.units.test_s3 import save_tiny

    weights, _ = save_tiny(tmp_path_factory.mktemp("s3"), "v1", 25)
    return weights


@pytest.mark.parametrize(("mode", "resampler"), [("s3tokenizer", "torchaudio"), ("step-audio", "soxr")])
def test_s3_extract_is_the_same(cli, corpus, tmp_path, s3_weights, mode, resampler):
    _, scp = corpus
    args = ["s3-extract", "--device", "cpu", "--model", s3_weights, "--rate", "25", "--long-audio", mode, "--resampler", resampler, f"scp:{scp}", "-o", "OUT"]
    units = _same_output(cli, tmp_path, *args)
    assert units.count(b"\n") == 3


def test_s3_windows_of_a_stream_equal_the_whole(corpus, monkeypatch):
    """Every long-audio mode's model inputs, cut from the blocks, equal those of the whole recording."""
    import torch

    from audiotok.units.features import WhisperLogMel
    from audiotok.units.s3_long_audio import Layout

    root, _ = corpus
    monkeypatch.setenv(LONG_SECONDS_VARIABLE, "60")
    stream = open_stream(root / "a_long16k.wav")
    samples = decode(root / "a_long16k.wav").samples
    mel = WhisperLogMel(128, 16000)

    def log_mel(wave):
        return mel.log_mel(torch.from_numpy(np.ascontiguousarray(wave))).T.numpy()

    for mode in ("s3tokenizer", "step-audio", "sliding"):
        layout = Layout(mode, 4)
        whole = layout.windows(samples, log_mel)
        pieces, windows = layout.streamed_windows(stream, mel, log_mel)
        assert [w.order for w in windows] == [w.order for w in whole] and len(whole) == 3
        for piece, window in zip(pieces, whole, strict=True):
            assert len(piece) == len(window.mel)
            assert np.array_equal(piece.read(), window.mel)


def test_stream_windows_overlapping_adjacent_or_apart():
    from audiotok.engine.batching import StreamWindows

    class Counting:
        rate = 1

        def __init__(self, samples, block):
            self.samples, self.block = samples, block

        def __len__(self):
            return len(self.samples)

        def blocks(self):
            for start in range(0, len(self.samples), self.block):
                yield self.samples[start : start + self.block]

    samples = np.arange(1000, dtype=np.float32)
    for block in (1, 7, 100, 999, 2000):
        for starts, size in (([0, 100, 150, 400, 990], 120), ([0, 300, 600], 100), ([0, 250, 500, 750], 250), ([5], 2000)):
            windows = StreamWindows(Counting(samples, block), starts, size)
            for index, start in enumerate(starts):
                assert np.array_equal(windows.read(index), samples[start : start + size])
