import pytest

from tests.builders.bicodec import write_random_bicodec


@pytest.fixture(scope="session")
def tiny_bicodec(tmp_path_factory):
    """A tiny random BiCodec in Spark-TTS-0.5B's file layout (seed 0: the golden file's model)."""
    return write_random_bicodec(tmp_path_factory.mktemp("bicodec") / "Spark-TTS-tiny", "tiny", seed=0)


@pytest.fixture(scope="session")
def tokenizer(tiny_bicodec):
    from audiotok.bicodec.tokenizer import BiCodecTokenizer

    return BiCodecTokenizer(tiny_bicodec)
