"""Contact queries and upserts (keyword-only sessions, no commits: the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from campaigns.contacts.validation import (
    MAX_PROPERTIES,
    NO_CHANNEL_MESSAGE,
    ContactInput,
    ContactValidationError,
    FieldError,
    lacks_channel,
)
from storage.tables import Contact
from storage.types import utcnow

_FIELDS = ("name", "phone", "email", "locale", "timezone", "customer_since", "last_surveyed_at")


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    # external id -> how many properties the merge would have left: refused, the stored contact is unchanged.
    too_many_properties: dict[str, int] = field(default_factory=dict)


def upsert_contacts(
    inputs: Sequence[ContactInput], *, session: Session, now: datetime | None = None
) -> UpsertResult:
    """Create or update contacts by external id, in as few statements as a batch allows.

    A field left empty keeps the stored value and properties are merged key by key, so that a file carrying only
    some columns never erases what other sources wrote. A merge that would leave more than MAX_PROPERTIES
    properties is refused for that contact (listed in `too_many_properties`), so repeated updates with new keys
    cannot grow a contact past the limit one record alone may not break.
    """
    by_id = {item.external_id: item for item in inputs}  # the last occurrence of an id wins
    existing = {
        contact.external_id: contact
        for contact in session.scalars(select(Contact).where(Contact.external_id.in_(by_id)))
    }
    too_many: dict[str, int] = {}
    for external_id, contact in existing.items():
        item = by_id[external_id]
        merged = len(contact.properties.keys() | item.properties.keys())
        if merged > MAX_PROPERTIES:
            too_many[external_id] = merged
        else:
            _apply(contact, item)
    at = now or utcnow()
    new_rows = [_new_row(item, at) for external_id, item in by_id.items() if external_id not in existing]
    if new_rows:
        session.execute(insert(Contact), new_rows)
    session.flush()
    return UpsertResult(
        created=len(new_rows), updated=len(existing) - len(too_many), too_many_properties=too_many
    )


def too_many_properties_error(merged: int) -> FieldError:
    return FieldError(
        "properties",
        f"together with the properties already stored the contact would have {merged}; "
        f"at most {MAX_PROPERTIES}",
    )


def upsert_contact(
    item: ContactInput, *, session: Session, require_channel: bool = False, now: datetime | None = None
) -> tuple[Contact, bool]:
    """Upsert one contact; returns it and whether it was created.

    With `require_channel`, a new contact without phone or email is refused (ContactValidationError).
    """
    if (
        require_channel
        and lacks_channel(item)
        and not existing_external_ids([item.external_id], session=session)
    ):
        raise ContactValidationError([FieldError("phone", f"a new contact {NO_CHANNEL_MESSAGE}")])
    result = upsert_contacts([item], session=session, now=now)
    if item.external_id in result.too_many_properties:
        raise ContactValidationError(
            [too_many_properties_error(result.too_many_properties[item.external_id])]
        )
    contact = get_contact_by_external_id(item.external_id, session=session)
    assert contact is not None
    return contact, result.created == 1


def existing_external_ids(external_ids: Sequence[str], *, session: Session) -> set[str]:
    """Those of `external_ids` that already belong to a stored contact."""
    if not external_ids:
        return set()
    return set(session.scalars(select(Contact.external_id).where(Contact.external_id.in_(external_ids))))


def get_contact_by_external_id(external_id: str, *, session: Session) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.external_id == external_id))


def _apply(contact: Contact, item: ContactInput) -> None:
    for name in _FIELDS:
        value = getattr(item, name)
        if value is not None:
            setattr(contact, name, value)
    if item.properties:
        contact.properties = {**contact.properties, **item.properties}


def _new_row(item: ContactInput, now: datetime) -> dict[str, object]:
    row: dict[str, object] = {name: getattr(item, name) for name in _FIELDS}
    row.update(external_id=item.external_id, properties=dict(item.properties), created_at=now, updated_at=now)
    return row


def property_names(*, session: Session) -> frozenset[str]:
    """Every property name some stored contact has: the variables campaign templates may use besides built-ins.

    Read by the database (one pass over the contacts' JSON), not by loading every contact into Python.
    """
    if session.get_bind().dialect.name == "postgresql":
        query = text("SELECT DISTINCT jsonb_object_keys(properties) FROM contacts")
    else:
        query = text("SELECT DISTINCT key FROM contacts, json_each(contacts.properties)")
    return frozenset(str(name) for name in session.scalars(query))
