"""`POST /api/v1/contacts`: the same upsert as the CSV import, one contact per request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Depends, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaigns.contacts.store import upsert_contact
from campaigns.contacts.validation import (
    MAX_EXTERNAL_ID_LENGTH,
    MAX_NAME_LENGTH,
    ContactInput,
    ContactValidationError,
    validate_contact,
)
from service.container import Container
from service.web.api.auth import Actor, KeyCheckedRoute, get_container
from service.web.api.responses import ERRORS
from storage.audit import record_audit
from storage.enums import AuditAction, AuditEntity
from storage.tables import Contact

router = APIRouter(tags=["contacts"], route_class=KeyCheckedRoute)

PropertyValue = str | int | float | bool


# What validate_contact accepts as an id, for the schema: some character other than a space, and no control
# characters. The code enforces it with its own messages; the schema says it so that clients know.
EXTERNAL_ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(
        min_length=1,
        max_length=MAX_EXTERNAL_ID_LENGTH,
        json_schema_extra={"pattern": EXTERNAL_ID_PATTERN},
        description="Your system's id for this person; the upsert key. Not blank, no control characters",
    )
    name: str | None = Field(None, max_length=MAX_NAME_LENGTH)
    phone: str | None = Field(None, description="E.164 (+4915112345678), or national with default_region")
    email: str | None = None
    locale: str | None = Field(None, description="BCP 47, e.g. en, de-AT, zh-Hant")
    timezone: str | None = Field(None, description="IANA zone, e.g. Europe/Berlin")
    properties: dict[str, PropertyValue] = Field(default_factory=dict)
    customer_since: str | None = Field(
        None,
        description="When the person became a customer, an ISO date or date-time (UTC without an offset): "
        "a relationship campaign's first_after_days counts from it instead of from the contact's creation",
        examples=["2019-03-01"],
    )
    last_surveyed_at: str | None = Field(
        None,
        description="When another tool last surveyed the person, an ISO date or date-time: the fatigue rule "
        "counts from it as well as from our own surveys",
        examples=["2026-10-02T09:30:00Z"],
    )
    default_region: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{2}$",
        description="The country whose national phone numbers `phone` may be written in: an ISO 3166 code "
        "that phone numbering knows, e.g. DE, US, GB",
    )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        """Refused here, as a field error, instead of failing validate_contact for the whole request."""
        if value is not None and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"'{value}' is not a country code that phone numbers use (e.g. DE, US, GB)")
        return value


class ContactOut(BaseModel):
    id: int
    external_id: str
    name: str | None
    phone: str | None
    email: str | None
    locale: str | None
    timezone: str | None
    properties: dict[str, Any]
    customer_since: datetime | None
    last_surveyed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls.model_validate(contact, from_attributes=True)


def field_errors(error: ContactValidationError, *location: str) -> RequestValidationError:
    """Our validation errors in FastAPI's own 422 shape, so clients parse one format."""
    return RequestValidationError(
        [{"loc": ["body", *location, e.field], "msg": e.message, "type": "value_error"} for e in error.errors]
    )


def validated_contact(body: ContactIn, *location: str) -> ContactInput:
    """The normalised contact, or FastAPI's 422 naming each bad field."""
    try:
        return validate_contact(
            body.model_dump(exclude={"default_region"}), default_region=body.default_region
        )
    except ContactValidationError as error:
        raise field_errors(error, *location) from None


@router.post(
    "/contacts",
    response_model=ContactOut,
    responses={201: {"model": ContactOut, "description": "Created"}, **ERRORS},
)
def upsert_contact_route(
    body: ContactIn,
    response: Response,
    actor: Actor,
    container: Annotated[Container, Depends(get_container)],
) -> ContactOut:
    """Create or update a contact by `external_id`: 201 when created, 200 when updated."""
    item = validated_contact(body)
    try:
        with container.db.transaction() as session:
            contact, created = upsert_contact(
                item, session=session, require_channel=True, now=container.clock.now()
            )
            record_audit(
                session=session,
                actor=actor,
                action=AuditAction.CONTACT_CREATED if created else AuditAction.CONTACT_UPDATED,
                entity_type=AuditEntity.CONTACT,
                entity_id=contact.id,
            )
            out = ContactOut.of(contact)
    except ContactValidationError as error:
        raise field_errors(error) from None
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out
