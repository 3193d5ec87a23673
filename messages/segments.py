"""SMS segment counting, done the way Twilio counts (and bills) segments.

Why this exists: a parent is billed and rate-limited per *segment*, not per message, and a
single curly apostrophe silently turns a 160-character message into a 3-segment one. The
message catalog and the Twilio stand-in both need the same, exact figure, so the rule lives
here once, in pure stdlib.

The algorithm follows Twilio's own reference calculator (TwilioDevEd/message-segment-calculator,
``SegmentedMessage.ts`` / ``Segment.ts`` / ``EncodedChar.ts``), see also
``/work/shared/reference/twilio.md`` §8:

1. The text is split into user-perceived characters (grapheme clusters), except that
   ``"\\r\\n"`` counts as two characters.
2. The message is GSM-7 iff every code point is in the GSM 03.38 basic set or its extension
   table; otherwise the *whole* message is UCS-2.
3. Size of a character: GSM-7 → 7 bits per septet (extension characters ``^ { } \\ [ ~ ] | €``
   and form feed are an escape plus a septet, i.e. 14 bits); UCS-2 → 16 bits per UTF-16 code
   unit (so an astral emoji costs 32 bits, a ZWJ family emoji far more).
4. A segment carries 1120 bits (140 octets). If the whole message fits, it is one segment.
   Otherwise every segment loses 48 bits to the concatenation header (UDH), leaving 1072
   bits, and characters are packed greedily *without ever splitting one across segments*.
   That gives the familiar 160/153 (GSM-7) and 70/67 (UCS-2) figures, and explains why
   e.g. 80 × ``€`` fits in one segment but 81 needs two.

The standard library has no grapheme segmentation, so :func:`_clusters` implements the subset
of Unicode UAX #29 that matters for SMS text: combining marks and other ``Extend`` characters,
variation selectors, emoji skin-tone modifiers, zero-width-joiner emoji sequences, regional
indicator (flag) pairs, emoji tag sequences and keycaps. Hangul jamo sequences and
``Prepend`` characters are not clustered (they only matter when such a cluster would straddle
a segment boundary in a UCS-2 message).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "count_segments",
    "encoding",
    "is_gsm7",
    "non_gsm_characters",
]

#: GSM 03.38 default alphabet: characters that cost one septet.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

#: GSM 03.38 extension table: characters sent as ESC + septet, costing two septets.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_SEGMENT_BITS = 1120  # 140 octets: the user-data payload of one SMS.
_UDH_BITS = 48  # 6-octet concatenation header carried by every part of a multipart SMS.

_ZWJ = 0x200D


def is_gsm7(text: str) -> bool:
    """Return True if ``text`` can be sent in the GSM-7 alphabet.

    Why: a single character outside GSM 03.38 (``’``, ``“``, ``—``, ``ç``, any emoji) switches
    the *whole* message to UCS-2, more than halving the characters per segment. The empty
    string is GSM-7.
    """
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def non_gsm_characters(text: str) -> list[str]:
    """Return the distinct user-perceived characters that force UCS-2, in order of appearance.

    Why: so a content author (or a lint over the message catalog) can be told exactly which
    characters to replace, e.g. ``["’", "—"]``. Each entry is a whole grapheme cluster (an
    emoji with a skin-tone modifier is one entry, not two), matching what the author sees.
    """
    seen: dict[str, None] = {}
    for cluster in _clusters(text):
        if not is_gsm7(cluster):
            seen.setdefault(cluster, None)
    return list(seen)


def encoding(text: str) -> str:
    """Return ``"GSM-7"`` or ``"UCS-2"``: the encoding Twilio will use for ``text``.

    Why: the encoding decides the segment sizes (160/153 vs 70/67) and is what Twilio's
    console shows; without Smart Encoding Twilio never substitutes lookalike characters.
    """
    return "GSM-7" if is_gsm7(text) else "UCS-2"


# Characters of the GSM-7 basic set that cost one septet each and are one character each.
_PLAIN = re.compile(r"[A-Za-z0-9 .,!?'\"():;@&%#*+=/<>_\n-]*")


def count_segments(text: str) -> int:
    """Return the number of SMS segments Twilio will send (and bill) for ``text``.

    Why: segments are the unit of cost and of sender throughput (MPS is segments per second),
    and a message that looks short can be several segments. Returns 0 for ``""``.
    """
    if not text:
        return 0
    if _PLAIN.fullmatch(text):
        # Letters, digits, spaces and everyday punctuation: one septet each, 160 / 153.
        return 1 if len(text) <= 160 else -(-len(text) // 153)
    gsm = is_gsm7(text)
    sizes = [_size_in_bits(cluster, gsm) for cluster in _clusters(text)]
    if sum(sizes) <= _SEGMENT_BITS:
        return 1
    capacity = _SEGMENT_BITS - _UDH_BITS
    segments = 1
    used = 0
    for size in sizes:
        # A character is never split: if it does not fit, it opens the next segment. A
        # (pathological) cluster bigger than a whole segment still gets a segment of its own.
        if used and used + size > capacity:
            segments += 1
            used = 0
        used += size
    return segments


def _size_in_bits(cluster: str, gsm: bool) -> int:
    """Return the encoded size of one user-perceived character."""
    if gsm:
        return sum(14 if ch in GSM7_EXTENSION else 7 for ch in cluster)
    return 16 * _utf16_units(cluster)


def _utf16_units(text: str) -> int:
    """Return the number of UTF-16 code units in ``text`` (astral characters count 2)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _is_extend(cp: int) -> bool:
    """Return True for code points that attach to the preceding character (UAX #29 Extend)."""
    if cp in (_ZWJ, 0x200C):
        return True
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:  # variation selectors
        return True
    if 0x1F3FB <= cp <= 0x1F3FF:  # emoji skin-tone modifiers
        return True
    if 0xE0020 <= cp <= 0xE007F:  # emoji tag sequences (e.g. subdivision flags)
        return True
    return unicodedata.category(chr(cp)) in ("Mn", "Me", "Mc")


def _is_regional_indicator(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _is_pictographic(cp: int) -> bool:
    """Approximate Extended_Pictographic: what may follow a ZWJ inside one emoji."""
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or 0x2300 <= cp <= 0x23FF
        or 0x2190 <= cp <= 0x21FF
        or 0x2B00 <= cp <= 0x2BFF
        or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D, 0x3297, 0x3299)
    )


def _clusters(text: str) -> list[str]:
    """Split ``text`` into grapheme clusters (simplified UAX #29; CR and LF stay separate)."""
    clusters: list[str] = []
    current = ""
    ri_run = 0  # regional indicators in the current cluster
    for ch in text:
        cp = ord(ch)
        if current:
            prev = ord(current[-1])
            joins = (
                (_is_extend(cp) and current not in ("\r", "\n"))
                or (prev == _ZWJ and _is_pictographic(cp) and _is_pictographic(ord(current[0])))
                or (_is_regional_indicator(cp) and ri_run == 1 and len(current) == 1)
            )
            if joins:
                current += ch
                ri_run += 1 if _is_regional_indicator(cp) else 0
                continue
            clusters.append(current)
        current = ch
        ri_run = 1 if _is_regional_indicator(cp) else 0
    if current:
        clusters.append(current)
    return clusters
