import numpy as np
import pytest

from audiotok.errors import AudiotokError, UsageError
from audiotok.units.interleave import deinterleave, format_string, interleave, parse_string, template_regex


def step_audio_token_string(vq02, vq06):
    """Step-Audio's merge_vq0206_to_token_str, as its tokenizer writes it."""
    _vq06 = [1024 + x for x in vq06]
    result, i, j = [], 0, 0
    while i < len(vq02) - 1 and j < len(_vq06) - 2:
        result.extend(vq02[i : i + 2] + _vq06[j : j + 3])
        i += 2
        j += 3
    return "".join(f"<audio_{x}>" for x in result)


def step_audio_ids(vq02_codes, vq06_codes):
    """Step-Audio's wav2token interleave of LLM ids (vq02 + 65536, vq06 + 65536 + 1024)."""
    vq02 = [x + 65536 for x in vq02_codes]
    vq06 = [x + 65536 + 1024 for x in vq06_codes]
    tokens = []
    for idx in range(min(len(vq06) // 3, len(vq02) // 2)):
        tokens += vq02[idx * 2 : (idx + 1) * 2] + vq06[idx * 3 : (idx + 1) * 3]
    return tokens


def test_golden_step_audio_layout():
    vq02, vq06 = [0, 1023, 5], [0, 4095, 7, 8, 9]  # 3 vq02, 5 vq06: one whole group
    ids = interleave([np.array(vq02), np.array(vq06)], [2, 3], [65536, 66560])
    assert ids.tolist() == [65536, 66559, 66560, 70655, 66567] == step_audio_ids(vq02, vq06)
    text = format_string(interleave([np.array(vq02), np.array(vq06)], [2, 3], [0, 1024]), "<audio_{}>")
    assert text == "<audio_0><audio_1023><audio_1024><audio_5119><audio_1031>" == step_audio_token_string(vq02, vq06)


@pytest.mark.parametrize("n02,n06", [(0, 0), (1, 3), (2, 2), (10, 15), (11, 17), (40, 59), (17, 26)])
def test_matches_step_audio_for_any_lengths(n02, n06):
    rng = np.random.default_rng(n02 * 100 + n06)
    vq02, vq06 = rng.integers(0, 1024, n02).tolist(), rng.integers(0, 4096, n06).tolist()
    assert interleave([np.array(vq02, dtype=np.int64), np.array(vq06, dtype=np.int64)], [2, 3], [65536, 66560]).tolist() == step_audio_ids(vq02, vq06)
    text = format_string(interleave([np.array(vq02, dtype=np.int64), np.array(vq06, dtype=np.int64)], [2, 3], [0, 1024]), "<audio_{}>")
    assert text == step_audio_token_string(vq02, vq06)


def test_round_trip_with_prefix():
    rng = np.random.default_rng(0)
    glob, semantic = rng.integers(0, 4096, 32), rng.integers(0, 8192, 50)
    tokens = interleave([semantic], [1], [4096], [glob], [0])
    assert tokens[:32].tolist() == glob.tolist() and tokens[32:].tolist() == (semantic + 4096).tolist()
    prefixes, streams = deinterleave(tokens, [1], [4096], [32], [0])
    assert prefixes[0].tolist() == glob.tolist() and streams[0].tolist() == semantic.tolist()
    a, b = rng.integers(0, 1024, 20), rng.integers(0, 4096, 30)
    _, back = deinterleave(interleave([a, b], [2, 3], [0, 1024]), [2, 3], [0, 1024])
    assert back[0].tolist() == a.tolist() and back[1].tolist() == b.tolist()


def test_strings_parse_back_and_reject_garbage():
    assert parse_string("<audio_3><audio_1030>", "<audio_{}>", "x").tolist() == [3, 1030]
    assert parse_string("", "<audio_{}>", "x").tolist() == []
    with pytest.raises(AudiotokError, match="unexpected text 'oops'"):
        parse_string("<audio_3>oops<audio_4>", "<audio_{}>", "x")
    with pytest.raises(UsageError):
        template_regex("<audio>")
    with pytest.raises(AudiotokError, match="not whole groups of 5"):
        deinterleave(np.arange(7), [2, 3], [0, 1024])
