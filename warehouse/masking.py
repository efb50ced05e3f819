"""Display masking (展示脱敏) of personal values, by the common conventions of docs/domain.md,
"Masking".

Used wherever a personal value could otherwise reach a person: logs, error messages, reports of
where personal data was found, and masked extracts.
"""

from __future__ import annotations

import re
from typing import Literal

Kind = Literal["id_number", "phone", "name", "address", "other"]


def mask(value: str, kind: Kind) -> str:
    """Mask one value: ID numbers keep the first 6 and last 4 (the birth date is hidden), phones
    the first 3 and last 4, names the first character (the surname), addresses the first 6
    characters (about the township), anything else only its length."""
    if not value:
        return value
    if kind == "id_number":
        return (
            value[:6] + "*" * max(len(value) - 10, 0) + value[-4:]
            if len(value) > 10
            else "*" * len(value)
        )
    if kind == "phone":
        return (
            value[:3] + "*" * max(len(value) - 7, 0) + value[-4:]
            if len(value) > 7
            else "*" * len(value)
        )
    if kind == "name":
        return value[0] + "*" * (len(value) - 1)
    if kind == "address":
        return value[:6] + "…" if len(value) > 6 else "*" * len(value)
    return f"<{len(value)} characters>"


_LONG_NUMBER = re.compile(r"[0-9０-９]{6,}[0-9０-９Xx]*")
_CJK_RUN = re.compile(r"[\u3400-\u9fff·]{2,}")
# A file path, from the root, a home folder, the current folder or a drive, through at least one
# folder, up to a space or a quote: where a file is, not personal data, so an error can say it.
_PATH = re.compile(r"""(?<![^\s'"(=])(?:[A-Za-z]:[\\/]|~?/|\.{1,2}/)[^\s'"]*[\\/][^\s'"]*""")


def _mask_values(text: str) -> str:
    text = _LONG_NUMBER.sub(lambda m: mask(m.group(), "phone"), text)
    return _CJK_RUN.sub(lambda m: m.group()[0] + "*" * (len(m.group()) - 1), text)


def scrub(message: str) -> str:
    """Mask what may be personal in a message we did not write (a driver's or a library's error):
    runs of six or more digits (ID numbers, phones) and runs of Chinese characters (names,
    addresses); file paths are kept whole. Used before such a message reaches a log or an
    exception."""
    parts, at = [], 0
    for path in _PATH.finditer(message):
        parts += [_mask_values(message[at : path.start()]), path.group()]
        at = path.end()
    return "".join([*parts, _mask_values(message[at:])])
