"""The interface every tokenizer shares, special tokens, files, and a corpus to train on.

A tokenizer turns text into a list of integer ids and back. Each concrete class learns its
vocabulary with ``train(text, vocab_size)`` (or loads one), and implements
``_encode_ordinary`` (text without special tokens) and ``decode``. This module adds what is
the same for all of them:

- special tokens, matched the way tiktoken matches them: by default a special token's text
  found in the input is an error that names it (text from users must not be able to inject
  ``<|endoftext|>``); ``allowed_special`` lets chosen ones through as their ids;
- ``save``/``load`` as JSON (never pickle, which can run code when loaded), written
  atomically so a crash never leaves a half-written file behind;
- text to train on: ``default_corpus``, which every Python installation carries, and
  ``read_text_file``, which names the file that is missing, binary or empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Literal

import regex

FORMAT_VERSION = 1


class TokenizerFileError(ValueError):
    """A tokenizer file exists but cannot be read as the tokenizer it claims to be."""


class DisallowedSpecialTokenError(ValueError):
    """The input contains the text of a special token that was not allowed."""


# ---- text to train on ------------------------------------------------------------------


def default_corpus() -> str:
    """Python's reference documentation (what ``help("if")`` shows), joined by newlines.

    About 465 KB of English technical prose with code samples, shipped with every Python
    (``pydoc_data.topics``): a reproducible training set with no download.
    """
    import pydoc_data.topics

    return "\n".join(pydoc_data.topics.topics.values())


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file; a missing, binary or empty file is a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file" if not path.exists() else f"{path} is not a file")
    raw = path.read_bytes()
    if b"\0" in raw:
        raise ValueError(f"{path} looks binary (it holds NUL bytes); give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text (byte {error.start}: {error.reason})") from None
    if not text.strip():
        raise ValueError(f"{path} is empty: there is nothing to train on")
    return text


# ---- files ------------------------------------------------------------------------------


def check_can_write(path: Path) -> None:
    """Raise an error naming the problem if ``path`` cannot become a file: it is a directory,
    a file stands where a parent directory should be, or that directory is not writable."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file name, e.g. {path / 'a.json'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"cannot write {path}: {parent} is a file, not a directory"
                )
            if not os.access(parent, os.W_OK):
                raise PermissionError(f"cannot write {path}: {parent} is not writable")
            return


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as UTF-8 so that ``path`` holds either the old file or the whole new one.

    The project's one rule for files (``minigrad.serialization.atomic_write_bytes`` follows it
    for weights; this package stands alone, so it keeps its own copy): missing parent
    directories are created; the data goes to a new file beside ``path``, is flushed to disk
    and renamed over ``path`` (a rename is atomic), then the directory is flushed so the new
    name survives a power cut. A new file gets the mode ``open()`` would give it (0o666 less
    the umask; not ``mkstemp``'s 0o600), a replaced file keeps its mode.
    """
    path = Path(path)
    check_can_write(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # some systems (Windows) cannot open a directory
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON, atomically (see ``write_text_atomic``)."""
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False))


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON object from ``path``; a missing or malformed file is a clear error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a tokenizer file")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerFileError(f"{path} is not a valid JSON tokenizer file: {exc}") from None
    if not isinstance(obj, dict):
        raise TokenizerFileError(f"{path} must hold a JSON object, found {type(obj).__name__}")
    return obj


def require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return ``data[key]`` if present and of the expected JSON type, else a clear error."""
    if key not in data:
        raise TokenizerFileError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise TokenizerFileError(
            f"{where}: field {key!r} should be {names}, found {type(value).__name__}"
        )
    return value


def unique_special_tokens(names: Iterable[str]) -> list[str]:
    """The special tokens a trainer was given, each once, in order; a bad name is an error
    now rather than after training."""
    if isinstance(names, str):
        raise TypeError(f"special_tokens must be a list of names, not the string {names!r}")
    names = list(dict.fromkeys(names))
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"special token names must be non-empty strings, got {name!r}")
    return names


def special_tokens_pattern(names: Iterable[str]) -> regex.Pattern:
    """A regex that finds any of ``names``; where one is a prefix of another, the longest
    is tried first, so that ``"<|a|>x"`` is found whole rather than as ``"<|a|>"`` + ``"x"``."""
    return regex.compile("|".join(regex.escape(n) for n in sorted(names, key=len, reverse=True)))


class Tokenizer(ABC):
    """Base class: ``encode``, ``decode``, ``vocab_size``, special tokens, ``save``/``load``."""

    _registry: dict[str, type[Tokenizer]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Tokenizer._registry[cls.__name__] = cls

    def __init__(self) -> None:
        self.special_tokens: dict[str, int] = {}
        self._special_pattern: regex.Pattern | None = None

    # ---- what each tokenizer provides -------------------------------------------------

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids: every id in ``range(vocab_size)`` may be produced or decoded."""

    @abstractmethod
    def train(self, text: str, vocab_size: int, **settings: Any) -> Tokenizer:
        """Learn a vocabulary of ``vocab_size`` ids from the corpus ``text``; returns ``self``.

        ``vocab_size`` counts every id, special tokens included; a corpus with too little in
        it may give fewer.
        """

    @abstractmethod
    def _encode_ordinary(self, text: str) -> list[int]:
        """Encode text in which special tokens have no meaning."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Turn ids back into text."""

    @abstractmethod
    def _to_dict(self) -> dict[str, Any]:
        """The JSON-ready state of the tokenizer (without ``type``/``format_version``)."""

    @classmethod
    @abstractmethod
    def _from_dict(cls, data: dict[str, Any], where: str) -> Tokenizer:
        """Rebuild a tokenizer from ``_to_dict``'s output; ``where`` names the file."""

    # ---- special tokens ---------------------------------------------------------------

    def register_special_tokens(self, tokens: dict[str, int]) -> None:
        """Register special tokens with explicit ids (e.g. tiktoken's ``<|endoftext|>``)."""
        taken = {idx: name for name, idx in self.special_tokens.items()}
        for name, idx in tokens.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"special token names must be non-empty strings, got {name!r}")
            if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
                raise ValueError(f"special token {name!r} needs a non-negative int id, got {idx!r}")
            if taken.get(idx, name) != name:
                raise ValueError(f"special tokens {taken[idx]!r} and {name!r} both want id {idx}")
            taken[idx] = name
        self.special_tokens.update(tokens)
        self._special_pattern = None

    def add_special_tokens(self, names: Iterable[str]) -> list[int]:
        """Append special tokens after the current vocabulary; returns their ids."""
        ids = []
        for name in names:
            if name not in self.special_tokens:
                self.register_special_tokens({name: self.vocab_size})
            ids.append(self.special_tokens[name])
        return ids

    def _find_specials(self) -> regex.Pattern:
        if self._special_pattern is None:
            self._special_pattern = special_tokens_pattern(self.special_tokens)
        return self._special_pattern

    # ---- encoding ---------------------------------------------------------------------

    def encode(
        self,
        text: str,
        *,
        allowed_special: Collection[str] | Literal["all"] = (),
        disallowed_special: Collection[str] | Literal["all"] = "all",
    ) -> list[int]:
        """Encode ``text`` into ids, treating special tokens as tiktoken does.

        ``allowed_special``: special tokens whose text becomes their id (``"all"`` for every
        one). ``disallowed_special``: special tokens whose text is an error; by default every
        special token that is not allowed. A special token in neither set is encoded as
        ordinary text.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        if not self.special_tokens:
            return self._encode_ordinary(text)
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ValueError(
                f"allowed_special names unregistered special tokens: {sorted(unknown)}"
            )
        if disallowed_special == "all":
            disallowed = set(self.special_tokens) - allowed
        else:
            disallowed = set(disallowed_special)
        if disallowed:
            for match in self._find_specials().finditer(text):
                if match.group() in disallowed:
                    raise DisallowedSpecialTokenError(
                        f"the text contains the special token {match.group()!r} at index "
                        f"{match.start()}; pass allowed_special={{{match.group()!r}}} to encode "
                        f"it as a special token, or disallowed_special=() to encode it as text"
                    )
        if not allowed:
            return self._encode_ordinary(text)
        ids: list[int] = []
        start = 0
        for match in self._find_specials().finditer(text):
            if match.group() not in allowed:
                continue
            ids.extend(self._encode_ordinary(text[start : match.start()]))
            ids.append(self.special_tokens[match.group()])
            start = match.end()
        ids.extend(self._encode_ordinary(text[start:]))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` ignoring special tokens entirely (their text is ordinary text)."""
        return self._encode_ordinary(text)

    def id_to_token(self, idx: int) -> str:
        """The text of one token (for display; see each class for the exact form)."""
        return self.decode([idx])

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        """Return ids as a list, or raise naming the first id that is not in the vocabulary."""
        ids = list(ids)
        size = self.vocab_size
        for position, idx in enumerate(ids):
            if not isinstance(idx, int) or isinstance(idx, bool):
                try:
                    idx = int(idx)  # numpy integers are welcome
                except (TypeError, ValueError):
                    raise TypeError(
                        f"token id at position {position} is not an int: {idx!r}"
                    ) from None
                ids[position] = idx
            if not 0 <= idx < size:
                raise ValueError(
                    f"token id {idx} at position {position} is outside the vocabulary "
                    f"(valid ids are 0..{size - 1})"
                )
        return ids

    def _texts(self, ids: list[int]) -> list[str]:
        """The text of each id, for vocabularies kept as ``self._text_of`` plus specials."""
        names = {i: name for name, i in self.special_tokens.items()}
        known = self._text_of  # type: ignore[attr-defined]
        out = []
        for position, idx in enumerate(ids):
            if idx < len(known):
                out.append(known[idx])
            elif idx in names:
                out.append(names[idx])
            else:
                raise ValueError(f"token id {idx} at position {position} is not in the vocabulary")
        return out

    # ---- files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Save the tokenizer as JSON (atomically: the file is never left half-written)."""
        data = {"type": type(self).__name__, "format_version": FORMAT_VERSION}
        data.update(self._to_dict())
        data["special_tokens"] = dict(self.special_tokens)
        write_json_atomic(path, data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Load a tokenizer saved with ``save``.

        ``Tokenizer.load`` returns whichever class the file names; ``BPETokenizer.load``
        insists the file holds a BPETokenizer.
        """
        data = read_json(path)
        where = str(path)
        kind = require(data, "type", str, where)
        version = require(data, "format_version", int, where)
        if version != FORMAT_VERSION:
            raise TokenizerFileError(
                f"{where}: format_version {version} is not supported (expected {FORMAT_VERSION})"
            )
        target = Tokenizer._registry.get(kind)
        if target is None:
            raise TokenizerFileError(
                f"{where}: unknown tokenizer type {kind!r}; known: {sorted(Tokenizer._registry)}"
            )
        if cls is not Tokenizer and not issubclass(target, cls):
            raise TokenizerFileError(f"{where} holds a {kind}, not a {cls.__name__}")
        tokenizer = target._from_dict(data, where)
        specials = require(data, "special_tokens", dict, where)
        try:
            tokenizer.register_special_tokens(specials)
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: bad special_tokens: {exc}") from None
        return tokenizer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"
