"""Write tests/bicodec/golden_reference.json: Spark-TTS's own tokens for the tiny random BiCodec.

Not run by the test suite. It needs Spark-TTS's python sources, kept OUTSIDE this project,
e.g. (PyPI's spark-tts-lib 0.2.1 packages them unchanged):
  pip download --no-deps spark-tts-lib==0.2.1 -d /tmp/ref && unzip the wheel into /tmp/ref/sl
  (empty its spark_tts_lib/__init__.py, which imports the TTS front end),
  pip install --target /tmp/ref/deps einops einx omegaconf antlr4-python3-runtime==4.9.3 frozendict
  PYTHONPATH=.:/tmp/ref/sl:/tmp/ref/deps .venv/bin/python tests/bicodec/make_golden.py
Each wave is written as a float WAV and tokenized with spark_tts_lib's BiCodecTokenizer.tokenize,
the path Spark-TTS itself takes.
"""

import json
import sys
import tempfile
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from audiotok.bicodec.random_model import write_random_bicodec  # noqa: E402
from tests.bicodec.signals import RATE, golden_waves  # noqa: E402


def main() -> None:
    from spark_tts_lib.models.audio_tokenizer import BiCodecTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        model = write_random_bicodec(Path(tmp) / "model", "tiny", seed=0)
        reference = BiCodecTokenizer(model, device="cpu")
        golden = {}
        for name, wave in golden_waves().items():
            path = Path(tmp) / f"{name}.wav"
            sf.write(path, wave, RATE, subtype="FLOAT")
            global_tokens, semantic_tokens = reference.tokenize(str(path))
            golden[name] = {"global_tokens": global_tokens.reshape(-1).tolist(), "semantic_tokens": semantic_tokens.reshape(-1).tolist()}
    out = Path(__file__).with_name("golden_reference.json")
    out.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
