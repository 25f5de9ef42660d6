"""Contact points (issue 26): a person's mobile, e-mail and work-chat ids, sealed at rest (`hub.store.datakey`),
re-sealed with the newest data key at start."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from sqlalchemy import Engine, select, text

from hub.people.base import PeopleBase
from hub.policy.errors import NotFound
from hub.store import datakey
from hub.store.models import Contact, User

logger = logging.getLogger(__name__)


class ContactPoints(BaseModel):
    """A person's contact points as given (the API's body, people.yaml's `contacts`): one field per column."""

    mobile: str | None = Field(None, pattern=r"^\+?\d{5,20}$", description="手机号, for SMS")
    email: str | None = Field(None, pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")
    wecom_user: str | None = Field(None, max_length=64, description="企业微信 userid, @-mentioned by the robot")
    dingtalk_mobile: str | None = Field(None, pattern=r"^\+?\d{5,20}$", description="钉钉 atMobiles")
    feishu_user: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                    description="飞书 open_id (ou_…) or user_id, @-ed by the Feishu robot")


class Contacts(PeopleBase):
    def contacts(self, username: str) -> Contact | None:
        with self.store.reading() as s:
            if s.get(User, username) is None:
                raise NotFound(f"no user {username}")
            return s.get(Contact, username)

    def set_contacts(self, username: str, **points: str | None) -> Contact:
        """Replace a person's contact points (None or "" clears one)."""
        with self.store.transaction() as s:
            if s.get(User, username) is None:
                raise NotFound(f"no user {username}")
            c = s.get(Contact, username, with_for_update=True)
            if c is None:
                c = Contact(username=username, updated_at=self.store.now())
                s.add(c)
            for k, v in points.items():
                setattr(c, k, v or None)
            c.updated_at = self.store.now()
        return c

    @staticmethod
    def seal_contacts(engine: Engine) -> int:
        """At start: every stored contact point sealed with the newest data key (legacy plain text sealed for
        the first time, values under an older key re-sealed: key rotation). Returns the rows rewritten."""
        cols = tuple(ContactPoints.model_fields)
        done = 0
        with engine.begin() as conn:
            for row in conn.execute(text(f"SELECT username, {', '.join(cols)} FROM contacts")).all():
                try:
                    values = {c: (datakey.reseal(v) if v is not None else None)
                              for c, v in zip(cols, row[1:], strict=True)}
                except ValueError:  # sealed with a key not given: left as it is, said once per person
                    logger.error("the contact points of %s are sealed with a data key this hub was not given "
                                 "(GRIDWATCH_DATA_KEYS: put the old key after the new one)", row[0])
                    continue
                conn.execute(text(f"UPDATE contacts SET {', '.join(f'{c} = :{c}' for c in cols)} WHERE username = :u"),
                             {**values, "u": row[0]})
                done += 1
        return done

    def names(self, usernames: list[str]) -> dict[str, tuple[str, Contact | None]]:
        """Display names and contact points of these people."""
        with self.store.reading() as s:
            users = {u.username: u.name for u in s.scalars(select(User).where(User.username.in_(usernames)))}
            found = {c.username: c for c in s.scalars(select(Contact).where(Contact.username.in_(usernames)))}
        return {u: (users.get(u, u), found.get(u)) for u in usernames}
