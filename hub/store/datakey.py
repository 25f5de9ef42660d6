"""Personal data sealed at rest (个人信息保护, 等保 数据保密性): people's contact points (mobile numbers, e-mail,
work-chat ids) are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256, the `cryptography` package's
authenticated recipe), so the database file or a dump does not show them.

The key comes from the environment: `GRIDWATCH_DATA_KEYS` (Fernet keys, comma-separated, the newest first:
rotation is putting a new key in front; every key still decrypts, the newest seals, and the hub re-seals every
stored value with it at start) or `GRIDWATCH_DATA_KEY` (one key). Without either, `hub serve` uses the key file
named by `data_key_file` (default `var/data.key` beside the database's folder), made at first start with mode
0600 and warned about: fine for one machine; with replicas, give them all the same key in the environment.

A sealed value is `enc:` + the Fernet token. A value without the prefix is legacy plain text (written before
this existed): it reads as it is and is sealed at the next start (`Store` → `People.seal_contacts`).
A process that never configured a key (a tool, a test building a store by hand) gets a key of its own that
dies with it, with a warning: such a process cannot read what another one sealed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

logger = logging.getLogger(__name__)
PREFIX = "enc:"
_lock = threading.Lock()
_cipher: MultiFernet | None = None


def configure(keys: list[bytes]) -> None:
    """Use these keys (the first seals; all of them open)."""
    global _cipher
    with _lock:
        _cipher = MultiFernet([Fernet(k) for k in keys])


def keys_from(env: dict[str, str], key_file: Path | None) -> tuple[list[bytes], str]:
    """The keys and where they came from: the environment, else the key file (made when missing)."""
    if env.get("GRIDWATCH_DATA_KEYS"):
        return [k.strip().encode() for k in env["GRIDWATCH_DATA_KEYS"].split(",") if k.strip()], "GRIDWATCH_DATA_KEYS"
    if env.get("GRIDWATCH_DATA_KEY"):
        return [env["GRIDWATCH_DATA_KEY"].strip().encode()], "GRIDWATCH_DATA_KEY"
    if key_file is None:
        raise LookupError("no data key: set GRIDWATCH_DATA_KEY (a Fernet key: gridwatch hub hash-key --data-key)")
    made = key_lines(key_file, Fernet.generate_key, "a data key for contact points", "GRIDWATCH_DATA_KEY")
    return made, str(key_file)


def key_lines(key_file: Path, make: Callable[[], bytes], what: str, env: str) -> list[bytes]:
    """The keys in a key file (one a line), the file made with one new key (mode 0600) when missing."""
    if not key_file.exists():  # written whole under another name, then linked: a hub starting beside this one
        key_file.parent.mkdir(parents=True, exist_ok=True)  # reads either no file or the whole key
        tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(make() + b"\n")
        try:
            os.link(tmp, key_file)
            logger.warning("made %s in %s (mode 0600); with several hubs, or to keep it off the disk, set %s "
                           "instead", what, key_file, env)
        except FileExistsError:
            pass  # another hub made it first: use theirs
        finally:
            tmp.unlink()
    return [line.strip() for line in key_file.read_bytes().splitlines() if line.strip()]


def _current() -> MultiFernet:
    global _cipher
    with _lock:
        if _cipher is None:
            logger.warning("no data key configured in this process: contact points are sealed with a key that "
                           "ends with it")
            _cipher = MultiFernet([Fernet(Fernet.generate_key())])
        return _cipher


def seal(value: str) -> str:
    return PREFIX + _current().encrypt(value.encode()).decode()


def unseal(value: str) -> str:
    """The plain value; legacy plain text as it is. A value no key opens raises ValueError (a wrong key)."""
    if not value.startswith(PREFIX):
        return value
    try:
        return _current().decrypt(value[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise ValueError("a sealed contact point no configured data key opens (GRIDWATCH_DATA_KEYS)") from None


def reseal(value: str) -> str:
    """Sealed with the newest key (legacy plain text sealed for the first time); ValueError when no key opens it."""
    if not value.startswith(PREFIX):
        return seal(value)
    try:
        return PREFIX + _current().rotate(value[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise ValueError("a sealed contact point no configured data key opens (GRIDWATCH_DATA_KEYS)") from None
