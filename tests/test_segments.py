"""Segment counting must match Twilio's figures exactly (they drive cost and throughput)."""

from __future__ import annotations

import pytest

from messages.segments import count_segments, encoding, is_gsm7, non_gsm_characters

FAMILY = "👨\u200d👩\u200d👧"  # one grapheme, 8 UTF-16 code units

# (id, text, expected encoding, expected segments)
SEGMENT_TABLE = [
    ("empty", "", "GSM-7", 0),
    ("hello", "Hello", "GSM-7", 1),
    # Verified against Twilio's reference calculator (twilio.md §8).
    ("gsm-160", "a" * 160, "GSM-7", 1),
    ("gsm-161", "a" * 161, "GSM-7", 2),
    ("gsm-306", "a" * 306, "GSM-7", 2),
    ("gsm-307", "a" * 307, "GSM-7", 3),
    ("ucs2-70-curly-apostrophe", "’" + "a" * 69, "UCS-2", 1),
    ("ucs2-71-curly-apostrophe", "’" + "a" * 70, "UCS-2", 2),
    ("ucs2-134-curly-apostrophe", "’" + "a" * 133, "UCS-2", 2),
    ("ucs2-135-curly-apostrophe", "’" + "a" * 134, "UCS-2", 3),
    ("emoji-fits-70-units", "a" * 68 + "😀", "UCS-2", 1),
    ("emoji-71-units", "a" * 69 + "😀", "UCS-2", 2),
    ("euro-80", "€" * 80, "GSM-7", 1),
    ("euro-81", "€" * 81, "GSM-7", 2),
    # Extension characters cost two septets.
    ("braces-80", "{}" * 40, "GSM-7", 1),
    ("braces-81", "{" * 81, "GSM-7", 2),
    ("form-feed-costs-two", "\f" * 81, "GSM-7", 2),
    ("gsm-accented-basic-set", "ÇÉÑÜßäöñüàèéùìò" * 10 + "a" * 10, "GSM-7", 1),
    # Characters are never split across a segment boundary.
    # 152 septets + 77 × € (154 septets) = 306 septets: 2 segments if an escape pair could
    # straddle the boundary, 3 because it cannot.
    ("escape-pair-not-split", "a" * 152 + "€" * 77, "GSM-7", 3),
    # 66 + 2 + 66 = 134 UTF-16 units: 2 if a surrogate pair could straddle, 3 because not.
    ("surrogate-pair-not-split", "a" * 66 + "😀" + "a" * 66, "UCS-2", 3),
    # A ZWJ emoji is one character: it moves whole to segment 2 (reference calculator).
    ("zwj-cluster-not-split", "a" * 64 + FAMILY + "a" * 60, "UCS-2", 3),
    ("flag-is-four-units", "🇬🇧" * 17 + "aa", "UCS-2", 1),
    ("flag-71-units", "🇬🇧" * 17 + "aaa", "UCS-2", 2),
    # One non-GSM character switches the whole message to UCS-2.
    ("one-em-dash", "a" * 100 + "—", "UCS-2", 2),
    ("lowercase-c-cedilla", "ç", "UCS-2", 1),
    ("backtick-not-gsm", "`", "UCS-2", 1),
    ("tab-not-gsm", "\t", "UCS-2", 1),
    ("crlf-is-two-chars", "\r\n" * 80, "GSM-7", 1),
    ("crlf-161-chars", "\r\n" * 80 + "a", "GSM-7", 2),
    ("long-1600", "a" * 1600, "GSM-7", 11),
    ("long-ucs2-1600", "’" * 1600, "UCS-2", 24),
]


@pytest.mark.parametrize(
    ("text", "expected_encoding", "expected_segments"),
    [pytest.param(text, enc, segs, id=case) for case, text, enc, segs in SEGMENT_TABLE],
)
def test_segments_match_twilio(text: str, expected_encoding: str, expected_segments: int) -> None:
    assert encoding(text) == expected_encoding
    assert is_gsm7(text) is (expected_encoding == "GSM-7")
    assert count_segments(text) == expected_segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("Hello {name}, it costs €5 [approx] ~ ^ | \\", [], id="extension-is-gsm"),
        pytest.param("It’s “fine” — ok", ["’", "“", "”", "—"], id="typographic"),
        pytest.param("’’ ’ a’", ["’"], id="distinct"),
        pytest.param("ç then Ç then ç", ["ç"], id="cedilla"),
        pytest.param("👍🏽 great 👍🏽 😀", ["👍🏽", "😀"], id="emoji-with-modifier-is-one"),
        pytest.param(f"hi {FAMILY}!", [FAMILY], id="zwj-family-is-one"),
        pytest.param("Cafe\u0301", ["e\u0301"], id="combining-accent-grapheme"),
        pytest.param("\r\n", [], id="crlf"),
    ],
)
def test_non_gsm_characters(text: str, expected: list[str]) -> None:
    assert non_gsm_characters(text) == expected


def test_smart_quotes_triple_the_segments_of_the_plain_text() -> None:
    """The catalog lint relies on this: one ’ turns a 1-segment SMS into 3."""
    plain = "Don't forget: " + "x" * 140
    curly = plain.replace("'", "’")
    assert len(plain) == len(curly) == 154
    assert count_segments(plain) == 1
    assert count_segments(curly) == 3
