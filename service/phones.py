"""Phone numbers: one canonical E.164 form, so the same parent is always the same row."""

from __future__ import annotations

import phonenumbers


def normalise_phone(raw: str, region: str = "GB") -> str:
    """E.164 for ``raw`` (``whatsapp:`` prefix allowed); ``ValueError`` says what is wrong."""
    text = raw.strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("is not a possible phone number (check the digits and country code)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def channel_of(address: str) -> str:
    """``whatsapp`` for a ``whatsapp:+...`` address, else ``sms``."""
    return "whatsapp" if address.strip().lower().startswith("whatsapp:") else "sms"
