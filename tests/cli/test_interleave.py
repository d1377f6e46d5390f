import json


def write(path, rows):
    path.write_text("".join(f"{k} {' '.join(map(str, v))}\n".replace(" \n", "\n") for k, v in rows.items()))
    return path


def test_step_audio_strings_and_round_trip(cli, tmp_path):
    vq02 = write(tmp_path / "vq02.txt", {"a": [0, 1023, 5, 6], "b": [1, 2]})
    vq06 = write(tmp_path / "vq06.txt", {"a": [0, 4095, 7, 8, 9, 10, 11], "b": [3, 4, 5]})
    result = cli("interleave", vq02, vq06, "--ratio", "2:3", "--offsets", "0,1024", "--format", "string", "-o", tmp_path / "tokens.txt")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tokens.txt").read_text() == (
        "a <audio_0><audio_1023><audio_1024><audio_5119><audio_1031><audio_5><audio_6><audio_1032><audio_1033><audio_1034>\n"
        "b <audio_1><audio_2><audio_1027><audio_1028><audio_1029>\n"
    )
    assert "1 trailing tokens of partial groups dropped" in result.stderr  # a's last vq06 token
    back = cli(
        "deinterleave",
        tmp_path / "tokens.txt",
        "--format",
        "string",
        "--ratio",
        "2:3",
        "--offsets",
        "0,1024",
        "-o",
        tmp_path / "a.txt",
        "-o",
        tmp_path / "b.txt",
    )
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "a.txt").read_text() == "a 0 1023 5 6\nb 1 2\n"
    assert (tmp_path / "b.txt").read_text() == "a 0 4095 7 8 9 10\nb 3 4 5\n"
    ids = cli("interleave", vq02, vq06, "--offsets", "65536,66560")
    assert ids.text.splitlines()[0] == "a 65536 66559 66560 70655 66567 65541 65542 66568 66569 66570"


def test_bicodec_prefix_jsonl(cli, tmp_path):
    semantic = write(tmp_path / "semantic.txt", {"u": [5, 6, 7]})
    glob = write(tmp_path / "global.txt", {"u": [1, 2]})
    result = cli("interleave", semantic, "--ratio", "1", "--prefix", glob, "--format", "jsonl", "-o", tmp_path / "t.jsonl")
    assert json.loads((tmp_path / "t.jsonl").read_text()) == {"key": "u", "tokens": [1, 2, 5, 6, 7]}
    back = cli(
        "deinterleave",
        f"jsonl:{tmp_path}/t.jsonl",
        "--format",
        "jsonl",
        "--ratio",
        "1",
        "--prefix-length",
        2,
        "--prefix-output",
        tmp_path / "g.txt",
        "-o",
        tmp_path / "s.txt",
    )
    assert back.returncode == 0 and result.returncode == 0, back.stderr
    assert (tmp_path / "g.txt").read_text() == "u 1 2\n" and (tmp_path / "s.txt").read_text() == "u 5 6 7\n"


def test_mismatched_keys_and_rates_are_named(cli, tmp_path):
    vq02 = write(tmp_path / "vq02.txt", {"a": [1, 2], "b": [1, 2]})
    vq06 = write(tmp_path / "vq06.txt", {"a": [1, 2, 3], "c": [1, 2, 3]})
    result = cli("interleave", vq02, vq06)
    assert result.returncode == 1
    assert f"{vq06} lacks b" in result.stderr and f"{vq06} has c that {vq02} lacks" in result.stderr
    fast = write(tmp_path / "fast.txt", {"a": list(range(60)), "b": list(range(60))})
    slow = write(tmp_path / "slow.txt", {"a": list(range(30)), "b": list(range(40))})  # b fits 2:3, a does not
    result = cli("interleave", slow, fast)
    assert result.returncode == 1
    assert "stream lengths do not fit --ratio 2:3 for 1 key(s): a (30 vs 60 tokens)" in result.stderr
    assert cli("interleave", vq02, vq06, "--ratio", "2:3:1").returncode == 2
    assert cli("deinterleave", vq02, "-o", tmp_path / "x").returncode == 2  # two streams, one output
