"""Passwords and lockout: Argon2id hashes (argon2-cffi's RFC 9106 low-memory profile, verified in constant
time by the library, upgraded at the next sign-in when made with weaker parameters), the password policy, and
wrong passwords counted per account: `lock_after` in a row lock it for `lock_for`, doubled at each further lock
without a right password between (at most a day). The counters are in the database, so every replica sees them."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.audit import trail as audit
from hub.config import SignIn
from hub.people.base import PeopleBase
from hub.people.model import Person, person_of
from hub.policy.errors import Conflict, NotFound
from hub.store.models import User

logger = logging.getLogger(__name__)
MAX_LOCK_S = 86400.0  # the longest lock an account gets, however often it is locked
hasher = PasswordHasher()
DUMMY = hasher.hash("not a password of anyone")  # verified against for unknown names: the same time spent


def verify(stored: str, password: str) -> bool:
    try:
        hasher.verify(stored, password)
        return True
    except (VerificationError, InvalidHashError):
        return False


CHINESE = (
    # common Chinese passwords and their parts (from the published analyses of the 2011 CSDN/Tianya leaks):
    # number words (520 我爱你, 1314 一生一世, 5201314), pinyin phrases, QQ and keyboard habits
    "woaini", "aini", "5201314", "520", "1314", "521", "woaiwojia", "woaini1314", "iloveyou", "qq", "qq123",
    "a123456", "aa123456", "abc123", "123qwe", "qwe123", "1qaz2wsx", "zxcvbnm", "asdfghjkl", "qweasd",
    "mima", "mimamima", "wodemima", "nimade", "laopo", "laogong", "baobei", "xiaobao", "tiantian", "kaixin",
    "zhongguo", "china", "beijing", "shanghai", "guangzhou", "shenzhen", "huawei", "xiaomi", "taobao",
    "weixin", "wechat", "dingding", "ceshi", "guanli", "guanliyuan", "wangge", "chengguan", "zhihui", "zhihuizhongxin",
    "gridwatch", "admin", "root", "system", "test", "password", "passw0rd",
    # the hundred commonest surnames' pinyin, which with a birthday make most "personal" passwords
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu",
    "hu", "guo", "he", "lin", "gao", "luo", "zheng", "liang", "xie", "song", "tang", "han", "feng", "deng",
    "cao", "peng", "zeng", "xiao", "tian", "dong", "pan", "yuan", "cai", "jiang", "yu", "du", "ye", "cheng",
    "wei", "su", "lv", "ding", "ren", "lu", "yao", "shen", "zhong", "cui", "tan", "fan", "jin", "shi", "jia",
    "xia", "fu", "fang", "zou", "xiong", "bai", "meng", "qin", "qiu", "hou", "yin", "xue", "yan", "duan",
    "lei", "long", "tao", "mao", "hao", "gu", "gong", "shao", "wan", "qian", "dai", "mo", "kong", "xiang",
    "chang", "min", "hong", "jun", "ming", "hua", "jie", "ling", "ping", "fei", "yun", "xin", "jing", "qiang",
)
"""Words zxcvbn is given beside its own (English) lists, so Chinese habits score as the guessable words they
are; its own matchers already see dates (19900101, 1990-01-01), repeats (aaaa, 1111), sequences (abcd, 1234)
and keyboard walks (qwerty, 1qaz)."""
ZXCVBN_MAX = 72  # zxcvbn refuses longer input (ValueError): the first 72 characters are judged
MIN_SCORE = 3  # zxcvbn: 3 = "safely unguessable: moderate protection from offline slow-hash scenario"
MIN_CLASSES = 3


def classes(password: str) -> int:
    """Character classes used: lower case, upper case, digits, others (symbols, Chinese characters)."""
    return (any(c.islower() for c in password) + any(c.isupper() for c in password)
            + any(c.isdigit() for c in password) + any(not c.isalnum() or ord(c) > 127 for c in password))


def weakness(policy: SignIn, password: str, username: str) -> str | None:
    """Why the policy refuses this password (None: it does not): `short`, `username`, `common`, `classes`,
    `guessable` (zxcvbn's score under `MIN_SCORE` with Chinese words and the username in its dictionaries)."""
    if len(password) < policy.password_min:
        return "short"
    if len(username) >= 3 and username.lower() in password.lower():
        return "username"
    if password.lower() in common():
        return "common"
    if classes(password) < MIN_CLASSES:
        return "classes"
    from zxcvbn import zxcvbn

    inputs = [username, *username.replace("_", ".").split("."), *CHINESE]
    if zxcvbn(password[:ZXCVBN_MAX], user_inputs=inputs)["score"] < MIN_SCORE or pinyin_and_number(password, inputs):
        return "guessable"
    return None


def pinyin_and_number(password: str, words: list[str]) -> bool:
    """Letters that are nothing but these words (a name in pinyin, 我爱你 as woaini) with digits and marks
    around them (a birthday, 1314): the commonest "personal" password in China, which zxcvbn, pricing each
    word by its rank, still scores moderate."""
    letters = "".join(c for c in password.lower() if c.isascii() and c.isalpha())
    if not letters or len(password) - len(letters) > 10:
        return False
    known = {w.lower() for w in words if w.isascii() and w.isalpha()}
    ends = [True] + [False] * len(letters)  # ends[i]: letters[:i] is made of known words
    for i in range(1, len(letters) + 1):
        ends[i] = any(ends[j] and letters[j:i] in known for j in range(max(0, i - 12), i))
    return ends[-1]


WHY = {"short": "a password has at least {min} characters",
       "username": "a password may not contain the username",
       "common": "that password is one of the most common ones; choose another",
       "classes": "a password uses at least three of: lower case, upper case, digits, other characters",
       "guessable": "that password is easy to guess (words, names, pinyin, dates, repeats or keyboard runs); "
                    "choose a longer mix"}


def hashed(policy: SignIn, password: str, username: str) -> str:
    """The password's Argon2id hash, if the policy accepts it (a Conflict saying why otherwise)."""
    why = weakness(policy, password, username)
    if why is not None:
        least = policy.password_min
        raise Conflict(WHY[why].format(min=least), "weak_password", min=least, why=why)
    return hasher.hash(password)


@functools.cache
def common() -> frozenset[str]:
    """The 30,000 most common passwords (zxcvbn's list, from leaked password sets)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


class Lockout(PeopleBase):
    def _wrong(self, username: str, now: datetime) -> None:
        """One more wrong password for this account: past `lock_after` in a row, lock it (longer each time)."""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                return
            u.failed_logins = (u.failed_logins or 0) + 1
            if u.failed_logins < self.lock_after:
                return
            u.locks = (u.locks or 0) + 1
            u.failed_logins = 0
            u.locked_until = now + timedelta(seconds=min(self.lock_for * 2 ** (u.locks - 1), MAX_LOCK_S))
            audit.append_in(s, audit.Act(username, "account_locked", target=f"users/{username}", detail={
                "until": u.locked_until.isoformat(), "wrong_passwords": self.lock_after, "lock": u.locks}), now)
            logger.warning("account %s locked until %s after %d wrong passwords in a row (lock %d)", username,
                           u.locked_until.isoformat(), self.lock_after, u.locks)

    def unlock(self, username: str) -> Person:
        """An administrator lifts the lock and clears the counters."""
        with self.store.transaction() as s:
            u = s.get(User, username, with_for_update=True)
            if u is None:
                raise NotFound(f"no user {username!r}")
            u.failed_logins, u.locks, u.locked_until = 0, 0, None
            return person_of(u)
