"""Text input of the job pipelines: gzip is decompressed, a file that is not text is named.

Users land gzip files all the time, so a ``.gz`` key or the gzip magic bytes (``1f 8b``) mean
"decompress first" wherever a pipeline reads text (transactions CSV, retail CSVs, carbon CSV).
After that, the first bytes decide whether the object is text a CSV reader can use at all;
when it is not, :class:`UnreadableInput` says why in one line (the object is then quarantined
whole, see :mod:`lakeline.stages.quarantine`, instead of crashing the run or turning every
line into a reject):

* a gzip stream that is truncated or corrupt;
* another compression or archive (zip, bzip2, xz, zstd): only gzip is decompressed;
* UTF-16 or UTF-32 text (a byte-order mark, or NUL bytes between ASCII letters);
* binary data (a NUL byte, or mostly bytes that are neither UTF-8 nor text).

A few bad lines in an otherwise good UTF-8 file are not a file-level problem: the pipelines
reject those lines one by one (``ENCODING_ERROR``).
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from pathlib import Path

from lakeline import reasons
from lakeline.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
#: how much of the (decompressed) start of a file is sniffed
SNIFF_BYTES = 64 * 1024
#: above this share of undecodable or control characters in the sniffed start, it is binary
BINARY_SHARE = 0.10
_OTHER_COMPRESSION = (
    (b"PK\x03\x04", "a zip archive"), (b"BZh", "bzip2-compressed"), (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"), (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
)
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32LE"), (b"\x00\x00\xfe\xff", "UTF-32BE"),
    (b"\xff\xfe", "UTF-16LE"), (b"\xfe\xff", "UTF-16BE"),
)
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")


class UnreadableInput(DataError):
    """A landed object that is not text a pipeline can read (the message says why)."""

    def __init__(self, message: str, reason: str = reasons.ENCODING_ERROR) -> None:
        super().__init__(message, reason)


def is_gzip(key: str, head: bytes) -> bool:
    """True when ``key`` ends in ``.gz`` or ``head`` starts with the gzip magic bytes."""
    return key.lower().endswith(".gz") or head.startswith(GZIP_MAGIC)


def problem(head: bytes) -> str | None:
    """Why text starting with ``head`` (already decompressed) cannot be read as UTF-8 text,
    or None when it can."""
    for magic, what in _OTHER_COMPRESSION:
        if head.startswith(magic):
            return f"the object is {what}; only gzip (.gz) is decompressed: land it as plain or gzip CSV"
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return (f"the object is {name} text (byte-order mark {bom.hex(' ').upper()}); "
                    "land it as UTF-8")
    nul = head.find(b"\x00")
    if nul >= 0:
        # ASCII text in UTF-16 without a byte-order mark: every other byte is NUL
        pairs = head[: min(len(head), 512) // 2 * 2]
        half = len(pairs) // 2
        if half and max(pairs[1::2].count(0), pairs[0::2].count(0)) > 0.9 * half:
            return ("the object looks like UTF-16 text (NUL bytes between letters, no byte-order mark); "
                    "land it as UTF-8")
        return f"the object is binary, not text (a NUL byte at offset {nul})"
    text = head.decode("utf-8", "replace")
    if len(head) == SNIFF_BYTES:
        text = text[:-1]  # the sniffed window may end inside a multi-byte character
    odd = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in _TEXT_CONTROLS))
    if text and odd > BINARY_SHARE * len(text):
        return (f"the object is binary, not text ({odd} of the first {len(text)} characters are not "
                "UTF-8 text)")
    return None


def text_bytes(raw: bytes, key: str) -> bytes:
    """The text of the landed object ``key`` (its bytes ``raw``): gzip decompressed, checked
    by :func:`problem`. Raises :class:`UnreadableInput` naming the key and the reason."""
    data = raw
    if is_gzip(key, raw[:2]):
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableInput(f"{key}: {_gzip_error(exc)}") from exc
    why = problem(data[:SNIFF_BYTES])
    if why is not None:
        raise UnreadableInput(f"{key}: {why}")
    return data


def text_path(path: Path, key: str, work: Path) -> Path:
    """A local path holding the text of the landed object ``key`` (a local copy at ``path``):
    ``path`` itself, or its gzip content decompressed into ``work`` (streamed: memory holds one
    buffer whatever the size). Raises :class:`UnreadableInput` like :func:`text_bytes`."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if is_gzip(key, head[:2]):
        name = Path(key).name
        out = work / (name[:-3] if name.lower().endswith(".gz") else f"{name}.txt")
        try:
            with gzip.open(path, "rb") as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            out.unlink(missing_ok=True)
            raise UnreadableInput(f"{key}: {_gzip_error(exc)}") from exc
        with out.open("rb") as f:
            head = f.read(SNIFF_BYTES)
        path = out
    why = problem(head)
    if why is not None:
        raise UnreadableInput(f"{key}: {why}")
    return path


def _gzip_error(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError):
        detail = "the stream ends before its end marker"
    return f"gzip data is truncated or corrupt ({detail}); land the whole file again"


__all__ = ["GZIP_MAGIC", "SNIFF_BYTES", "UnreadableInput", "is_gzip", "problem", "text_bytes", "text_path"]
