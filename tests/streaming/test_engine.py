"""StreamingTokenizer: streamed units against offline `tokenize`, sessions, threads, memory."""

import threading
import tracemalloc

import numpy as np
import pytest

from audiotok.dsp.resample import resample
from audiotok.errors import AudiotokError
from audiotok.streaming.engine import StreamingTokenizer
from audiotok.streaming.resampling import StreamResampler
from audiotok.tokenizers.features import open_backend
from tests.streaming.helpers import babble, feed_in_pieces, make_bundle, offline_units, signal_bundle


@pytest.fixture(scope="module")
def mfcc_bundle(tmp_path_factory):
    return signal_bundle(tmp_path_factory.mktemp("mfcc") / "km", "mfcc", deltas=True)


@pytest.fixture(scope="module")
def hubert_bundle(tmp_path_factory, tiny_hubert):
    backend = open_backend("model", model=str(tiny_hubert), layer=2, device="cpu")
    return make_bundle(tmp_path_factory.mktemp("hubert") / "km", backend, [babble(3.0, seed=1), babble(2.0, seed=2)])


def random_sizes(seed: int, count: int = 64) -> list[int]:
    """Piece sizes from 1 sample to 0.3 s, tiny ones (below one frame) included."""
    rng = np.random.default_rng(seed)
    return [int(s) for s in np.where(rng.random(count) < 0.3, rng.integers(1, 200, count), rng.integers(200, 4800, count))]


@pytest.mark.parametrize("kind, options", [("mfcc", {"deltas": True}), ("mfcc", {}), ("fbank", {})])
def test_signal_features_stream_exactly(tmp_path, kind, options):
    bundle = signal_bundle(tmp_path / "km", kind, **options)
    engine = StreamingTokenizer(str(bundle))
    audio = babble(4.0, seed=5)
    expected = offline_units(bundle, audio)
    for seed in range(3):
        assert np.array_equal(feed_in_pieces(engine, f"s{seed}", audio, random_sizes(seed)), expected)
    assert np.array_equal(feed_in_pieces(engine, "whole", audio, [len(audio)]), expected)


def test_mfcc_streams_real_speech_exactly(mfcc_bundle, speech_dir):
    import soundfile as sf

    audio, rate = sf.read(sorted(speech_dir.glob("*.flac"))[0], dtype="float32")
    engine = StreamingTokenizer(str(mfcc_bundle), input_rate=rate)
    expected = offline_units(mfcc_bundle, audio if rate == 16000 else resample(audio, rate, 16000))
    assert np.array_equal(feed_in_pieces(engine, "a", audio, [int(0.5 * rate), 37, int(1.3 * rate)]), expected)


def test_streamed_resampling_equals_whole_signal_resampling():
    audio = babble(2.0, seed=3, rate=44100)
    for rate_out in (16000, 22050, 48000):
        resampler = StreamResampler(44100, rate_out)
        pieces, start = [], 0
        for size in random_sizes(7, 200):
            pieces.append(resampler.feed(audio[start : start + size]))
            start += size
            if start >= len(audio):
                break
        streamed = np.concatenate([*pieces, resampler.finish()])
        offline = resample(audio, 44100, rate_out)
        assert len(streamed) == len(offline)
        # Measured equal bit for bit (soxr keeps its filter state across pieces); allow float rounding.
        assert np.max(np.abs(streamed - offline)) <= 1e-6


def test_resampled_stream_gives_the_offline_units(mfcc_bundle):
    audio = babble(3.0, seed=8, rate=22050)
    engine = StreamingTokenizer(str(mfcc_bundle), input_rate=22050)
    expected = offline_units(mfcc_bundle, resample(audio, 22050, 16000))
    assert np.array_equal(feed_in_pieces(engine, "a", audio, random_sizes(9)), expected)


def test_logmel_equals_offline_except_the_running_floor(tmp_path):
    from audiotok.streaming.featurizers import LogMelStream

    backend = open_backend("logmel")
    audio = babble(3.0, seed=4)
    offline = backend([audio])[0]
    stream = LogMelStream(backend.function)
    pieces = [stream.feed(audio[i : i + 999]) for i in range(0, len(audio), 999)]
    streamed = np.concatenate([*pieces, stream.finish()])
    assert streamed.shape == offline.shape
    # Whisper floors at (utterance maximum - 8); the stream knows only the maximum so far.
    # Everything above the offline floor is the same number, and so is every frame once
    # the running maximum has reached the utterance's.
    above_floor = offline > offline.min() + 1e-6
    assert np.max(np.abs(streamed - offline)[above_floor]) <= 1e-6
    first_piece_with_the_max = int(np.argmax([p.max() if len(p) else -np.inf for p in pieces]))
    settled = sum(len(p) for p in pieces[:first_piece_with_the_max])
    assert np.max(np.abs(streamed[settled:] - offline[settled:])) <= 1e-6


def test_hubert_agreement_and_exactness_with_full_context(hubert_bundle):
    audio = babble(6.0, seed=11)
    expected = offline_units(hubert_bundle, audio)
    # The group-norm front end normalises over the whole input and attention is global, so a
    # window of left context + chunk + look-ahead cannot reproduce offline exactly. Measured on
    # this tiny random model: 0.86-0.94 (0.89-0.93 on real speech), while keeping the rows one
    # frame off gives 0.01-0.14; 0.75 sits between, with room for BLAS differences.
    engine = StreamingTokenizer(str(hubert_bundle), left_context=2.0, lookahead=0.5, max_chunk=1.0)
    streamed = feed_in_pieces(engine, "a", audio, [16000])
    assert len(streamed) == len(expected)
    assert np.mean(streamed == expected) >= 0.75
    # Context covering the whole utterance on both sides: every window is the whole recording,
    # emitted in several chunks (max_chunk 0.5 s) whose frame offsets must line up exactly.
    whole = StreamingTokenizer(str(hubert_bundle), left_context=10.0, lookahead=10.0, max_chunk=0.5)
    assert np.array_equal(feed_in_pieces(whole, "a", audio, random_sizes(2)), expected)


def test_hubert_windows_start_on_frame_boundaries(hubert_bundle):
    # One frame per encoder run: every window starts at another frame, each one's offset must
    # be right (measured 0.86 here; rows one frame off give 0.01-0.07).
    audio = babble(3.0, seed=12)
    expected = offline_units(hubert_bundle, audio)
    engine = StreamingTokenizer(str(hubert_bundle), left_context=1.0, lookahead=1.0, max_chunk=0.02)
    streamed = feed_in_pieces(engine, "a", audio, [8000])
    assert len(streamed) == len(expected) and np.mean(streamed == expected) >= 0.75


def test_sessions_in_threads_equal_their_solo_runs(hubert_bundle, mfcc_bundle):
    signals = {f"caller-{i}": babble(2.0 + 0.5 * i, seed=20 + i) for i in range(4)}
    for bundle in (mfcc_bundle, hubert_bundle):
        engine = StreamingTokenizer(str(bundle), left_context=1.0, lookahead=0.3, max_chunk=0.5)
        solo = {key: feed_in_pieces(engine, key, audio, random_sizes(i)) for i, (key, audio) in enumerate(signals.items())}
        results, errors = {}, []
        start = threading.Barrier(len(signals))

        def run(key, audio, seed):
            try:
                start.wait()
                results[key] = feed_in_pieces(engine, key, audio, random_sizes(seed))
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=run, args=(key, audio, i)) for i, (key, audio) in enumerate(signals.items())]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors and set(results) == set(signals)
        for key in signals:
            assert np.array_equal(results[key], solo[key]), key
        assert engine.sessions() == []


def test_session_memory_is_bounded(mfcc_bundle, hubert_bundle):
    audio = babble(2.0, seed=30)
    piece = 480  # 30 ms

    def run(engine, chunks):
        session = engine.session("long")
        sizes, peak_growth = [], 0
        tracemalloc.start()
        try:
            for i in range(chunks):
                start = (i * piece) % (len(audio) - piece)
                engine.feed("long", audio[start : start + piece])
                sizes.append(session.stream.buffered())
                if i == chunks // 10:
                    baseline = tracemalloc.get_traced_memory()[0]
                if i > chunks // 10:
                    peak_growth = max(peak_growth, tracemalloc.get_traced_memory()[0] - baseline)
        finally:
            tracemalloc.stop()
        engine.finish("long")
        return max(sizes), peak_growth

    # MFCC with deltas: under one frame plus one piece of samples, and 8 frames for the deltas;
    # the buffers start at 4096 rows and stay there.
    largest, growth = run(StreamingTokenizer(str(mfcc_bundle)), 1000)
    assert largest <= 2 * 4096
    assert growth < 100_000  # bytes, while 30 s of audio went through
    # HuBERT with 0.5 s of left context: left context + chunk + look-ahead + one frame, never the stream.
    largest, growth = run(StreamingTokenizer(str(hubert_bundle), left_context=0.5, lookahead=0.1, max_chunk=0.1), 100)
    assert largest <= 2 * (8000 + 2 * piece + 1600 + 400)
    assert growth < 1_000_000


def test_bad_samples_and_settings_are_clear_errors(mfcc_bundle, tmp_path):
    engine = StreamingTokenizer(str(mfcc_bundle))
    with pytest.raises(AudiotokError, match="NaN or Inf"):
        engine.feed("a", np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudiotokError, match="mono"):
        engine.feed("a", np.zeros((10, 2), np.float32))
    assert len(engine.finish("never-opened")) == 0
    with pytest.raises(AudiotokError, match="no such tokenizer bundle"):
        StreamingTokenizer(str(tmp_path / "missing"))


def test_paraformer_streams_like_offline(tmp_path):
    from pathlib import Path

    from audiotok.units.encoders import load_encoder

    tiny = Path(__file__).resolve().parents[1] / "data" / "paraformer_tiny"
    backend = load_encoder(str(tiny), None, "cpu", "float32")
    bundle = make_bundle(tmp_path / "km", backend, [babble(2.0, seed=1), babble(1.5, seed=2)], k=8)
    engine = StreamingTokenizer(str(bundle))
    audio = babble(3.0, seed=50)
    expected = offline_units(bundle, audio)
    # The model's own session (Step-Audio's chunked encoder) streams by construction.
    assert np.array_equal(feed_in_pieces(engine, "a", audio, random_sizes(5)), expected)
    assert engine.session("b").stream.buffered() == 0


def test_whisper_encoder_agreement_and_window_limit(tmp_path, whisper_dir, speech_dir):
    import soundfile as sf

    from audiotok.units.encoders import load_encoder

    audio = sf.read(sorted(speech_dir.glob("*.flac"))[0], dtype="float32")[0][: 6 * 16000]
    backend = load_encoder(str(whisper_dir), 2, "cpu", "float32")
    bundle = make_bundle(tmp_path / "km", backend, [audio[: 5 * 16000]], k=50)
    expected = offline_units(bundle, audio)
    # 30 s windows: with 4 s of left context, 2 s chunks and 1 s of look-ahead, the first three
    # shared recordings agreed on 0.89-0.95 of their units (position embeddings and the
    # log-mel floor move with the window); 5 s / 1 s / 1 s gave 0.99.
    streamed = feed_in_pieces(StreamingTokenizer(str(bundle), left_context=4.0, lookahead=1.0, max_chunk=2.0), "a", audio, [32000])
    assert len(streamed) == len(expected) and np.mean(streamed == expected) >= 0.8
    # Context covering the recording: each window is the offline window.
    whole = StreamingTokenizer(str(bundle), left_context=6.0, lookahead=6.0, max_chunk=3.0)
    assert np.array_equal(feed_in_pieces(whole, "a", audio, [48000]), expected)
    with pytest.raises(AudiotokError, match="exceed the encoder's fixed 30 s window"):
        StreamingTokenizer(str(bundle), left_context=28.0, lookahead=1.0, max_chunk=2.0)


def test_onnx_encoder_without_a_frame_count_streams_its_frames_in_place(tmp_path):
    import warnings

    import torch

    from audiotok.units.encoders import load_encoder

    class StridedConv(torch.nn.Module):
        """Frame-local: frame t reads samples [320 t, 320 t + 400), so streaming must be exact."""

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(1, 8, 400, stride=320)

        def forward(self, wav):
            return torch.tanh(self.conv(wav[:, None, :])).transpose(1, 2)

    torch.manual_seed(0)
    path = tmp_path / "enc.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            StridedConv().eval(),
            (torch.randn(1, 16000),),
            str(path),
            input_names=["wav"],
            output_names=["feats"],
            dynamic_axes={"wav": {0: "b", 1: "t"}, "feats": {0: "b", 1: "f"}},
            dynamo=False,
        )
    backend = load_encoder(str(path), None, "cpu", "float32")
    bundle = make_bundle(tmp_path / "km", backend, [babble(2.0, seed=1)], k=16)
    audio = babble(3.0, seed=60)
    expected = offline_units(bundle, audio, model=str(path))
    for lookahead in (0.0, 0.3):
        engine = StreamingTokenizer(str(bundle), model=str(path), left_context=0.5, lookahead=lookahead, max_chunk=0.4)
        assert np.array_equal(feed_in_pieces(engine, "a", audio, random_sizes(3)), expected)
