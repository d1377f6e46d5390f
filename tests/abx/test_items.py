"""ABX items from alignments: abkhazia's phone and triphone rules, exclusions, phone folding, speakers."""

import pytest

from audiotok.abx.items import Item, build_items, fold_phone, read_item_file, speakers_of, write_item_file
from audiotok.errors import AudiotokError, UsageError

ALIGNMENT = {"u1": [(0.0, 0.2, "sil"), (0.2, 0.3, "DH"), (0.3, 0.4, "AH0"), (0.4, 0.6, "K"), (0.6, 0.7, "AE1"), (0.7, 0.9, "T"), (0.9, 1.0, "sil")]}


def test_phone_items_have_their_neighbours_as_context_and_never_touch_silence():
    items = build_items(ALIGNMENT, {"u1": "s1"}, "phone")
    assert items == [
        Item("u1", 0.3, 0.4, "AH0", "DH", "K", "s1"),
        Item("u1", 0.4, 0.6, "K", "AH0", "AE1", "s1"),
        Item("u1", 0.6, 0.7, "AE1", "K", "T", "s1"),
    ]


def test_triphone_items_span_the_three_phones():
    items = build_items(ALIGNMENT, {"u1": "s1"}, "triphone", exclude=())
    assert [(i.onset, i.offset, i.prev, i.phone, i.next) for i in items] == [
        (0.0, 0.4, "sil", "DH", "AH0"),
        (0.2, 0.6, "DH", "AH0", "K"),
        (0.3, 0.7, "AH0", "K", "AE1"),
        (0.4, 0.9, "K", "AE1", "T"),
        (0.6, 1.0, "AE1", "T", "sil"),
    ]


def test_phone_items_at_the_edges_take_sil_as_context():
    items = build_items({"u": [(0.0, 0.1, "a"), (0.1, 0.2, "b")]}, {"u": "s"}, "phone", exclude=())
    assert [(i.prev, i.phone, i.next) for i in items] == [("SIL", "a", "b"), ("a", "b", "SIL")]


def test_folding_and_maps_make_arpabet_and_timit_labels_one_set():
    assert [fold_phone(p) for p in ("AH0", "ah", "ER1", "T", "ax")] == ["ah", "ah", "er", "t", "ax"]
    items = build_items(ALIGNMENT, {"u1": "s1"}, "phone", phone_map={"AH0": "AX"}, fold=True)
    assert [(i.prev, i.phone, i.next) for i in items] == [("dh", "ax", "k"), ("ax", "k", "ae"), ("k", "ae", "t")]


def test_speakers_from_utt2spk_a_pattern_or_one_per_utterance(tmp_path):
    (tmp_path / "utt2spk").write_text("103-1-0 103\n# comment\n2412-5-1 2412\n")
    keys = ["103-1-0", "2412-5-1"]
    assert speakers_of(keys, utt2spk=str(tmp_path / "utt2spk"))[0] == {"103-1-0": "103", "2412-5-1": "2412"}
    assert speakers_of(keys, pattern="^([^-]+)-")[0] == {"103-1-0": "103", "2412-5-1": "2412"}
    assert speakers_of(keys, pattern="^[0-9]")[0] == {"103-1-0": "1", "2412-5-1": "2"}
    speakers, how = speakers_of(keys)
    assert speakers == {k: k for k in keys} and "own speaker" in how
    with pytest.raises(AudiotokError, match="no speaker for 1 utterance"):
        speakers_of(["103-1-0", "9-9-9"], utt2spk=str(tmp_path / "utt2spk"))
    with pytest.raises(AudiotokError, match="does not match the key 'x'"):
        speakers_of(["x"], pattern="^([0-9]+)")
    with pytest.raises(UsageError, match="not a regular expression"):
        speakers_of(keys, pattern="(")
    (tmp_path / "bad").write_text("a b c\n")
    with pytest.raises(AudiotokError, match="bad:1: expected two columns, found 3"):
        speakers_of(keys, utt2spk=str(tmp_path / "bad"))


def test_item_file_is_zerospeech_s_format(tmp_path):
    write_item_file(build_items(ALIGNMENT, {"u1": "s1"}, "phone"), tmp_path / "phone.item")
    assert (tmp_path / "phone.item").read_text() == (
        "#file onset offset #phone prev-phone next-phone speaker\nu1 0.3 0.4 AH0 DH K s1\nu1 0.4 0.6 K AH0 AE1 s1\nu1 0.6 0.7 AE1 K T s1\n"
    )
    assert read_item_file(tmp_path / "phone.item") == build_items(ALIGNMENT, {"u1": "s1"}, "phone")
    (tmp_path / "bad.item").write_text("#header\nu1 0.3 0.4 AH0 DH K\n")
    with pytest.raises(AudiotokError, match="bad.item:2: expected 7 columns, found 6"):
        read_item_file(tmp_path / "bad.item")
