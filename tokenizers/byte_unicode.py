"""GPT-2's reversible map between the 256 byte values and 256 printable characters.

GPT-2's ``vocab.json`` and ``merges.txt`` are text files, yet its tokens are byte strings
that may contain spaces, newlines or half a UTF-8 character. So each byte is written as one
printable Unicode character: printable Latin-1 bytes stand for themselves and the others
(control bytes, space, ...) are shifted to U+0100 and up. A space becomes "Ġ" (U+0120),
which is why GPT-2 tokens look like "Ġthe".
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """The map byte value -> character used in GPT-2's vocabulary files."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse map: character in a GPT-2 vocabulary file -> byte value."""
    return {char: b for b, char in bytes_to_unicode().items()}


def token_to_text(token: bytes) -> str:
    """Write a token's bytes the way GPT-2's files do (``b" the"`` -> ``"Ġthe"``)."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def text_to_token(text: str) -> bytes:
    """Read a token written the GPT-2 way back into bytes; unknown characters are an error."""
    table = unicode_to_bytes()
    try:
        return bytes(table[char] for char in text)
    except KeyError as exc:
        raise ValueError(
            f"{text!r} is not a GPT-2 byte-encoded token: {exc.args[0]!r} "
            f"is not one of the 256 byte characters"
        ) from None
