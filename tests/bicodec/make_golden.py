"""Write tests/bicodec/golden_reference.json: Spark-TTS's own tokens for the tiny random BiCodec.

It needs Spark-TTS's python sources, kept out of audiotok: PyPI's spark-tts-lib 0.2.1 packages
them unchanged, and `make venv` installs it with the few modules it imports that audiotok does not
(requirements-reference.txt, without dependencies) into .venv/reference; see tests/data/README.md.

    PYTHONPATH=.venv/reference .venv/bin/python tests/bicodec/make_golden.py [OUT_JSON]

OUT_JSON defaults to tests/bicodec/golden_reference.json; CI writes a fresh one to a temporary
directory and compares it to the stored one and to audiotok (tests/bicodec/test_tokenizer.py).
Each wave is written as a float WAV and tokenized with spark_tts_lib's BiCodecTokenizer.tokenize,
the path Spark-TTS itself takes.
"""

import json
import sys
import tempfile
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bicodec.signals import RATE, golden_waves  # noqa: E402
from tests.builders.bicodec import write_random_bicodec  # noqa: E402

STORED = Path(__file__).with_name("golden_reference.json")


def main(out: Path = STORED) -> None:
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
    out.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else STORED)
