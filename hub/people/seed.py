"""`people.yaml` (值班人员): the people the rosters name, made at start when they have no account yet, so that
notices are on from the first start of a new hub (`hub init` switches rosters, notices and this file on).

A person made from the file has a random password nobody knows: they are told (their contact points are set)
but sign in only after an administrator sets a password on the board's 人员 page. The file never changes an
account that exists, and it fills only the contact points an account lacks: what people or administrators
changed through the API stays. Units are checked against the org tree; a problem names file, path and line.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gridwatch.core.config import Strict, first_repeat
from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import load_sourced, problem
from hub.people.accounts import People
from hub.people.contacts import ContactPoints
from hub.policy.errors import Conflict, NotFound
from hub.policy.org import Org
from hub.store.cases import Store


class ContactSpec(ContactPoints):
    """The API's contact fields, checked as strictly as any config key (a misspelt one is an error)."""

    model_config = Strict.model_config


class PersonSpec(Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=64, description="the name messages and the board show")
    unit: str = Field(description="the unit they work for (an id of the org tree)")
    role: Literal["operator", "viewer"] = "operator"
    contacts: ContactSpec = Field(default_factory=lambda: ContactSpec())


class PeopleFile(Strict):
    people: list[PersonSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> PeopleFile:
        if (u := first_repeat(p.username for p in self.people)) is not None:
            raise ValueError(f"username {u!r} is listed twice")
        return self


def load_people_file(path: Path, org: Org) -> PeopleFile:
    spec, src = load_sourced(PeopleFile, path)
    problems = [problem(path, src, ("people", i, "unit"), f"unit {p.unit!r} is not in the org tree")
                for i, p in enumerate(spec.people) if p.unit not in org.units]
    if problems:
        raise ConfigError(problems)
    return spec


def seed_people(store: Store, spec: PeopleFile) -> int:
    """Make the accounts the file lists and the database lacks, and fill the contact points they lack.
    Returns the accounts made. Several replicas starting together: the one that loses the race skips."""
    people = People(store, [])
    made = 0
    for p in spec.people:
        try:
            contact = people.contacts(p.username)
        except NotFound:
            try:
                people.add(p.username, p.name, p.unit, p.role, secrets.token_urlsafe(24) + "-Aa1")
                made += 1
            except Conflict:  # another replica made them first
                pass
            contact = people.contacts(p.username)
        missing = {k: v for k, v in p.contacts.model_dump().items()
                   if v is not None and (contact is None or getattr(contact, k) is None)}
        if missing:
            kept = {k: getattr(contact, k) for k in ContactSpec.model_fields} if contact is not None else {}
            people.set_contacts(p.username, **(kept | missing))
    return made
