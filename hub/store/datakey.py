"""Personal data sealed at rest (个人信息保护, 等保 数据保密性): people's contact points (mobile numbers, e-mail,
work-chat ids) are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256, the `cryptography` package's
authenticated recipe), so the database file or a dump does not show them.

The key comes from the environment: `GRIDWATCH_DATA_KEYS` (Fernet keys, comma-separated, the newest first:
rotation is putting a new key in front; every key still decrypts, the newest seals, and the hub re-seals every
stored value with it at start) or `GRIDWATCH_DATA_KEY` (one key). Without either, `hub serve` uses the key file
named by `data_key_file` (default `var/data.key` beside the database's folder), made at first start with mode
0600 and warned about: fine for one machine; with replicas, give them all the same key in the environment.

国密 (issue 42): a key written `sm4:` + 32 hex digits is an SM4 key (GB/T 32907, through the `cryptography`
package where its OpenSSL has SM4); values it seals are `sm4:<key id>:` + base64 of a 12-byte nonce, the
ciphertext and the 16-byte GCM tag (SM4-GCM, authenticated as Fernet is). Keys of both kinds may stand in one
list: the first seals, all open, so rotating from Fernet to SM4 (an SM4 key put first) or back re-seals every
value at the next start with nothing lost. `gridwatch hub hash-key --data-key --sm4` prints a new SM4 key.

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
SM4_PREFIX = "sm4:"
_cipher: MultiFernet | None = None
_sm4: dict[str, bytes] = {}  # key id -> SM4 key
_sealer: str | None = None  # the SM4 key id that seals, when the newest key is an SM4 one


def sm4_id(key: bytes) -> str:
    import hashlib

    return hashlib.sha256(b"gridwatch-sm4:" + key).hexdigest()[:8]


def new_sm4_key() -> bytes:
    return SM4_PREFIX.encode() + os.urandom(16).hex().encode()


def configure(keys: list[bytes]) -> None:
    """Use these keys (the first seals; all of them open): Fernet keys, and SM4 keys written `sm4:<hex>`."""
    global _cipher, _sealer
    fernets, sm4 = [], {}
    for k in keys:
        if k.startswith(SM4_PREFIX.encode()):
            raw = bytes.fromhex(k[len(SM4_PREFIX):].decode())
            if len(raw) != 16:
                raise ValueError("an SM4 data key is sm4: and 32 hex digits (128 bits)")
            sm4[sm4_id(raw)] = raw
        else:
            fernets.append(Fernet(k))
    if sm4:
        _sm4_check()
    with _lock:
        _sm4.clear()
        _sm4.update(sm4)
        _sealer = sm4_id(bytes.fromhex(keys[0][len(SM4_PREFIX):].decode())) if keys and keys[0].startswith(
            SM4_PREFIX.encode()) else None
        # (with only SM4 keys, Fernet values from before cannot be opened: said by unseal, per value)
        _cipher = MultiFernet(fernets or [Fernet(Fernet.generate_key())])


def _sm4_check() -> None:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        Cipher(algorithms.SM4(b"\0" * 16), modes.GCM(b"\0" * 12)).encryptor()
    except UnsupportedAlgorithm:
        raise ValueError("this OpenSSL has no SM4-GCM: the sm4: data keys cannot be used here") from None


def _sm4_seal(value: str, kid: str) -> str:
    import base64

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    nonce = os.urandom(12)
    enc = Cipher(algorithms.SM4(_sm4[kid]), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(kid.encode())
    body = enc.update(value.encode()) + enc.finalize()
    return f"{SM4_PREFIX}{kid}:" + base64.b64encode(nonce + body + enc.tag).decode()


def _sm4_open(value: str) -> str:
    import base64

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    kid, _, b64 = value[len(SM4_PREFIX):].partition(":")
    key = _sm4.get(kid)
    if key is None:
        raise ValueError(f"a contact point sealed with SM4 key {kid}, which this hub was not given "
                         "(GRIDWATCH_DATA_KEYS)")
    raw = base64.b64decode(b64)
    nonce, body, tag = raw[:12], raw[12:-16], raw[-16:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(kid.encode())
    try:
        return (dec.update(body) + dec.finalize()).decode()
    except InvalidTag:
        raise ValueError("a contact point sealed with SM4 that does not open: altered, or another key") from None


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
    cipher = _current()
    if _sealer is not None:
        return _sm4_seal(value, _sealer)
    return PREFIX + cipher.encrypt(value.encode()).decode()


def unseal(value: str) -> str:
    """The plain value; legacy plain text as it is. A value no key opens raises ValueError (a wrong key)."""
    if value.startswith(SM4_PREFIX):
        return _sm4_open(value)
    if not value.startswith(PREFIX):
        return value
    try:
        return _current().decrypt(value[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise ValueError("a sealed contact point no configured data key opens (GRIDWATCH_DATA_KEYS)") from None


def reseal(value: str) -> str:
    """Sealed with the newest key (legacy plain text sealed for the first time); ValueError when no key opens it."""
    if value.startswith(SM4_PREFIX):
        plain = _sm4_open(value)
        return value if _sealer is not None and value.startswith(f"{SM4_PREFIX}{_sealer}:") else seal(plain)
    if not value.startswith(PREFIX):
        return seal(value)
    if _sealer is not None:  # Fernet to SM4
        return seal(unseal(value))
    try:
        return PREFIX + _current().rotate(value[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise ValueError("a sealed contact point no configured data key opens (GRIDWATCH_DATA_KEYS)") from None
