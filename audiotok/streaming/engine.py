"""StreamingTokenizer: several concurrent streaming sessions over one bundle.

    engine = StreamingTokenizer("exp/km500", input_rate=48000)
    units = engine.feed("caller-7", samples)   # the units that became final
    units = engine.finish("caller-7")          # the rest; the session is gone

Each session has its own lock, resampler and feature stream; the model and the
centroid assigner are shared behind one lock. A session holds only what its
stream still needs (see featurizers.py), so its memory does not grow with time.
"""

import logging
import threading
from dataclasses import dataclass, field

import numpy as np

from audiotok.errors import AudiotokError

log = logging.getLogger("audiotok")


@dataclass
class Session:
    stream: object
    resampler: object
    lock: threading.Lock = field(default_factory=threading.Lock)
    frames_emitted: int = 0  # units given out so far: the next unit is frame number frames_emitted


class StreamingTokenizer:
    def __init__(
        self,
        bundle_dir: str,
        *,
        model: str | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        input_rate: int | None = None,
        left_context: float = 5.0,
        lookahead: float = 0.5,
        max_chunk: float = 10.0,
    ):
        """input_rate: the rate of the samples fed (default: the bundle's own).
        left_context, lookahead (seconds): what an encoder sees around each chunk.
        max_chunk: the most audio (seconds) of new frames one encoder run emits."""
        from audiotok.streaming.featurizers import open_stream_factory
        from audiotok.tokenizers.kmeans import open_bundle

        if left_context < 0 or lookahead < 0 or max_chunk <= 0:
            raise AudiotokError("left context and look-ahead must be >= 0 and the chunk > 0")
        opened = open_bundle(bundle_dir, device, dtype, model, replay_front_end=False)
        self.bundle, self.backend, self.assigner = opened.bundle, opened.backend, opened.assigner
        self.sample_rate = int(self.backend.sample_rate)
        self.hop = int(self.backend.hop)
        self.input_rate = int(input_rate or self.sample_rate)
        self._model_lock = threading.Lock()
        self._new_stream = open_stream_factory(self.backend, self._model_lock, left_context, lookahead, max_chunk)
        self._sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()

    @property
    def frame_seconds(self) -> float:
        """Seconds between consecutive units."""
        return self.hop / self.sample_rate

    def describe(self) -> str:
        return str(self.bundle.recipe.get("backend"))

    def session(self, session_id) -> Session:
        """The session with this id, opened on first use."""
        from audiotok.streaming.resampling import StreamResampler

        with self._sessions_lock:
            session = self._sessions.get(session_id)
            if session is None:
                session = Session(self._new_stream(), StreamResampler(self.input_rate, self.sample_rate))
                self._sessions[session_id] = session
            return session

    def sessions(self) -> list:
        with self._sessions_lock:
            return list(self._sessions)

    def feed(self, session_id, samples: np.ndarray) -> np.ndarray:
        """Add mono float samples (at input_rate) to a session; returns the units that became final."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise AudiotokError(f"feed takes mono samples (a 1-D array), not shape {samples.shape}")
        if not np.all(np.isfinite(samples)):
            raise AudiotokError(f"session {session_id!r}: the samples hold NaN or Inf")
        session = self.session(session_id)
        with session.lock:
            return self._label(session, session.stream.feed(session.resampler.feed(samples)))

    def finish(self, session_id) -> np.ndarray:
        """End a session: the units still pending (the look-ahead, the last frames)."""
        with self._sessions_lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return np.zeros(0, np.int64)
        with session.lock:
            tail = session.stream.feed(session.resampler.finish())
            frames = np.concatenate([tail, session.stream.finish()])
            return self._label(session, frames)

    def _label(self, session: Session, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(0, np.int64)
        with self._model_lock:  # the assigner keeps scratch buffers
            units = self.assigner(np.ascontiguousarray(frames, dtype=np.float32))
        session.frames_emitted += len(units)
        return units
