"""A person's contact points (`/users/{username}/contacts`, issue 26): in full for administrators and the person,
masked (138****5678) for anyone else; sealed at rest (`hub.people.contacts`)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from hub.api.audited import audited
from hub.api.deps import PeopleDep, Someone
from hub.api.errors import BODY, GUARD, responses
from hub.api.seen import refusing
from hub.notify.messages import mask
from hub.people.contacts import ContactPoints
from hub.policy.access import Principal
from hub.store.models import Contact

router = APIRouter(prefix="/api/v1", tags=["people"])


class ContactIn(ContactPoints):
    """The contact points to set (each field as `hub.people.contacts.ContactPoints` checks it)."""


class ContactOut(BaseModel):
    username: str
    mobile: str | None
    email: str | None
    wecom_user: str | None
    dingtalk_mobile: str | None
    feishu_user: str | None
    masked: bool = Field(description="true when the numbers are masked (neither an admin nor the person)")


def contact_out(username: str, c: Contact | None, full: bool) -> ContactOut:
    def m(v: str | None) -> str | None:
        return v if v is None or full else mask(v)
    return ContactOut(username=username, masked=not full, mobile=m(c.mobile if c else None),
                      email=m(c.email if c else None), wecom_user=c.wecom_user if c else None,
                      dingtalk_mobile=m(c.dingtalk_mobile if c else None), feishu_user=c.feishu_user if c else None)


def in_full(who: Principal, username: str) -> bool:
    return who.role in ("admin", "sysadmin") or (who.person is not None and who.name == username)


@router.get("/users/{username}/contacts", responses=responses(*GUARD, 403, 404))
def get_contacts(username: str, people: PeopleDep, who: Someone) -> ContactOut:
    """A person's contact points: in full for an administrator and for the person."""
    if not in_full(who, username):
        raise HTTPException(403, "only an administrator or the person reads their contact points")
    with refusing("no such user"):
        return contact_out(username, people.contacts(username), True)


@router.put("/users/{username}/contacts", responses=responses(*GUARD, *BODY, 403, 404),
            openapi_extra=audited("contacts_changed"))
def put_contacts(username: str, body: ContactIn, people: PeopleDep, who: Someone) -> ContactOut:
    """Set a person's contact points (an administrator, or the person for their own)."""
    if not in_full(who, username):
        raise HTTPException(403, "only an administrator or the person sets their contact points")
    with refusing("no such user"):
        return contact_out(username, people.set_contacts(username, **body.model_dump()), True)
