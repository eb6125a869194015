"""Validation and normalisation of one contact record.

The CSV import and the JSON HTTP API both hand a plain mapping to :func:`validate_contact`, which
reports every problem of the record at once so a user can fix a row in one go.
"""

from __future__ import annotations

import functools
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import email_validator
import phonenumbers

from campaigns.messages.locales import normalise_locale

STANDARD_FIELDS = (
    "external_id",
    "name",
    "phone",
    "email",
    "locale",
    "timezone",
    "customer_since",
    "last_surveyed_at",
)
# The JSON API nests free properties under this key; it is therefore never a property name itself.
PROPERTIES_KEY = "properties"

# Limits of what is stored per contact (and per event): generous for CRM data, small enough that one record
# cannot fill the database, a Slack alert or a template's variables. Documented in the README ("Limits").
MAX_EXTERNAL_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
MAX_PROPERTIES = 50
MAX_PROPERTY_KEY_LENGTH = 64
MAX_PROPERTY_VALUE_LENGTH = 1000
# Values quoted back in error messages are shortened so one huge cell cannot flood a report.
_MAX_QUOTED_LENGTH = 60


@dataclass(frozen=True)
class ContactInput:
    """A validated, normalised contact."""

    external_id: str
    name: str | None = None
    phone: str | None = None  # E.164, e.g. "+4930123456"
    email: str | None = None  # as normalised by email-validator
    locale: str | None = None  # BCP 47, e.g. "pt-BR"
    timezone: str | None = None  # IANA name, e.g. "Europe/Berlin"
    properties: dict[str, str] = field(default_factory=dict)
    # History from another tool (UTC): when they became a customer, when they were last surveyed.
    customer_since: datetime | None = None
    last_surveyed_at: datetime | None = None


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class _Invalid:
    """A rejected value and the sentence that explains why."""

    message: str


# Checks the stripped, non-empty text of one field: the normalised value or why it is invalid.
_Check = Callable[[str], str | _Invalid]


class ContactValidationError(ValueError):
    """One or more fields of a contact are invalid; ``errors`` lists them all."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in self.errors))


NO_CHANNEL_MESSAGE = "needs a phone number or an email address"


def lacks_channel(contact: ContactInput) -> bool:
    """True when the record gives no way to reach the person.

    That is only an error for a new contact: an update may leave both out and keep the stored ones, which is
    why this is not part of :func:`validate_contact` (it cannot know what is stored).
    """
    return contact.phone is None and contact.email is None


def validate_contact(raw: Mapping[str, object], *, default_region: str | None = None) -> ContactInput:
    """Validate and normalise one contact record.

    ``raw`` holds the standard fields, free properties as a nested mapping under "properties"
    and/or as any other key (CSV columns). ``default_region`` (e.g. "DE") is used to read phone
    numbers written without a country code. Raises ContactValidationError listing every problem.
    """
    region = _check_region(default_region)
    errors: list[FieldError] = []

    external_id = _collect(raw, errors, "external_id", _check_external_id)
    if external_id is None and not any(error.field == "external_id" for error in errors):
        errors.append(FieldError("external_id", "is required"))
    name = _collect(raw, errors, "name", _check_name)
    phone = _collect(raw, errors, "phone", lambda text: _check_phone(text, region))
    email = _collect(raw, errors, "email", _check_email)
    locale = _collect(raw, errors, "locale", _check_locale)
    timezone = _collect(raw, errors, "timezone", _check_timezone)
    properties = _properties(raw, errors)
    customer_since = _collect_moment(raw, errors, "customer_since")
    last_surveyed_at = _collect_moment(raw, errors, "last_surveyed_at")

    # external_id is None only alongside an error; the second test narrows its type.
    if errors or external_id is None:
        raise ContactValidationError(errors)
    return ContactInput(
        external_id=external_id,
        name=name,
        phone=phone,
        email=email,
        locale=locale,
        timezone=timezone,
        properties=properties,
        customer_since=customer_since,
        last_surveyed_at=last_surveyed_at,
    )


def _collect(raw: Mapping[str, object], errors: list[FieldError], name: str, check: _Check) -> str | None:
    """Run ``check`` on a present text field; None (with the error recorded) when invalid or absent."""
    text = _text_field(raw, name, errors)
    if text is None:
        return None
    checked = check(text)
    if isinstance(checked, _Invalid):
        errors.append(FieldError(name, checked.message))
        return None
    return checked


def _collect_moment(raw: Mapping[str, object], errors: list[FieldError], name: str) -> datetime | None:
    """A present date or date-time field as an aware UTC datetime; None (error recorded) when invalid or absent."""
    text = _text_field(raw, name, errors)
    if text is None:
        return None
    moment = _check_moment(text)
    if isinstance(moment, _Invalid):
        errors.append(FieldError(name, moment.message))
        return None
    return moment


def _check_moment(text: str) -> datetime | _Invalid:
    """An ISO 8601 date (midnight UTC) or date-time (UTC when it carries no offset).

    Only ISO forms are read: "01/03/2019" is the 1st of March in one country and the 3rd of January in another,
    and a history date read the wrong way round would move a customer's surveys by months without a word.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _Invalid(
            f"{_quote(text)} is not a date; use an ISO date such as 2019-03-01 "
            "or a date-time such as 2019-03-01T09:30:00+01:00"
        )
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _quote(value: str) -> str:
    """A value as shown inside a message: shortened and with control characters escaped."""
    if len(value) > _MAX_QUOTED_LENGTH:
        value = value[: _MAX_QUOTED_LENGTH - 1] + "…"
    # A raw line break inside a message would break the one-line-per-problem import report.
    shown = "".join(repr(char)[1:-1] if unicodedata.category(char) == "Cc" else char for char in value)
    return f"'{shown}'"


def _describe_type(value: object) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _has_surrogates(text: str) -> bool:
    # Lone surrogates come from undecodable bytes; they cannot be stored or encoded as UTF-8.
    return any("\ud800" <= char <= "\udfff" for char in text)


def _not_storable(text: str) -> bool:
    # PostgreSQL text and JSONB cannot hold NUL at all (SQLite can, so only PostgreSQL failed, with a 500).
    return "\x00" in text or _has_surrogates(text)


def _text_field(raw: Mapping[str, object], name: str, errors: list[FieldError]) -> str | None:
    """The stripped text of a standard field, None when absent or blank; records type errors."""
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        # e.g. {"phone": 4915112345678} from JSON: a number would lose a leading 0 or "+".
        errors.append(FieldError(name, f"must be text (a string), not {_describe_type(value)}"))
        return None
    if _has_surrogates(value):
        errors.append(FieldError(name, "contains characters that are not valid text"))
        return None
    text = value.strip()
    return text or None


def _check_external_id(text: str) -> str | _Invalid:
    if len(text) > MAX_EXTERNAL_ID_LENGTH:
        return _Invalid(f"is too long ({len(text)} characters; at most {MAX_EXTERNAL_ID_LENGTH})")
    if any(unicodedata.category(char) == "Cc" for char in text):
        return _Invalid(f"{_quote(text)} contains control characters (such as line breaks or tabs)")
    return text


def _check_name(text: str) -> str | _Invalid:
    if len(text) > MAX_NAME_LENGTH:
        return _Invalid(f"is too long ({len(text)} characters; at most {MAX_NAME_LENGTH})")
    if "\x00" in text:  # PostgreSQL cannot store it; the other fields' own checks refuse it already
        return _Invalid("contains a NUL character, which cannot be stored")
    return text


def _check_region(default_region: str | None) -> str | None:
    # A bad region is a mistake of the caller (one command-line option), not of a record, so it
    # is reported once as a plain ValueError instead of once per contact.
    if default_region is None:
        return None
    region = default_region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{default_region!r} is not a region code for phone numbers (e.g. DE, US, GB)")
    return region


def _check_phone(text: str, region: str | None) -> str | _Invalid:
    invalid = _Invalid(f"{_quote(text)} is not a valid phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if region is None and exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return _Invalid(
                f"{_quote(text)} has no country code: write it as +<country code> <number> "
                "or set a default region (--default-region)"
            )
        return invalid
    if not phonenumbers.is_valid_number(number):
        return invalid
    if number.extension:
        # E.164 has no extensions and an extension cannot receive a text message; dropping it
        # silently would store a different number than the one given.
        return _Invalid(f"{_quote(text)} has an extension; give a number that can receive SMS")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_email(text: str) -> str | _Invalid:
    try:
        result = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return _Invalid(f"{_quote(text)} is not a valid email address ({exc})")
    return str(result.normalized)


def _check_locale(text: str) -> str | _Invalid:
    locale = normalise_locale(text)
    if locale is None:
        return _Invalid(f"{_quote(text)} is not a locale; use a language code such as en, pt-BR or zh-Hans")
    return locale


@functools.cache
def _timezones_by_folded_name() -> dict[str, str]:
    """Every IANA zone name, keyed case-insensitively (reading the tz database is slow)."""
    names = zoneinfo.available_timezones() | {"UTC"}
    return {name.casefold(): name for name in names}


def _check_timezone(text: str) -> str | _Invalid:
    # "europe/berlin" is unambiguous, so accept any case and store the canonical spelling.
    name = _timezones_by_folded_name().get(text.casefold())
    if name is None:
        return _Invalid(f"{_quote(text)} is not an IANA time zone (e.g. Europe/Berlin)")
    return name


def _property_value(key: str, value: object) -> str | _Invalid | None:
    """Property value as stripped text; None when empty (empty values are dropped)."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"  # JSON spelling, not Python's "True"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        return _Invalid(f"{_quote(key)} must be text or a number, not {_describe_type(value)}")
    if _not_storable(text):
        return _Invalid(f"{_quote(key)} contains characters that are not valid text")
    return text.strip() or None


def _raw_properties(raw: Mapping[str, object], errors: list[FieldError]) -> list[tuple[object, object]]:
    """(key, value) pairs from the nested "properties" mapping and from non-standard keys."""
    pairs: list[tuple[object, object]] = []
    nested = raw.get(PROPERTIES_KEY)
    if isinstance(nested, Mapping):
        pairs.extend(nested.items())
    elif nested is not None:
        errors.append(
            FieldError(
                PROPERTIES_KEY,
                f"must be an object of names and values, not {_describe_type(nested)} "
                "(a CSV column cannot be called 'properties')",
            )
        )
    pairs.extend((key, value) for key, value in raw.items() if key not in (*STANDARD_FIELDS, PROPERTIES_KEY))
    return pairs


def property_limit_errors(pairs: Iterable[tuple[object, object]]) -> list[FieldError]:
    """Where (key, value) pairs break the limits: at most MAX_PROPERTIES non-empty ones, names of at most
    MAX_PROPERTY_KEY_LENGTH and values of at most MAX_PROPERTY_VALUE_LENGTH characters.

    Contacts and events share these limits. Messages name the property, never quote its value, and over the
    count only the count is reported, so that 10,000 keys give one line instead of 10,000.
    """
    given = [(key, value) for key, value in pairs if not _is_blank(value)]
    if len(given) > MAX_PROPERTIES:
        return [FieldError(PROPERTIES_KEY, f"has {len(given)} properties; at most {MAX_PROPERTIES}")]
    errors = []
    for key, value in given:
        if not isinstance(key, str):
            continue  # reported by the caller, which knows what a name must be
        name = key.strip()
        if len(name) > MAX_PROPERTY_KEY_LENGTH:
            errors.append(
                FieldError(
                    PROPERTIES_KEY,
                    f"property name {_quote(name)} is too long ({len(name)} characters; "
                    f"at most {MAX_PROPERTY_KEY_LENGTH})",
                )
            )
        elif (
            isinstance(value, str | int | float)
            and len(text := str(value).strip()) > MAX_PROPERTY_VALUE_LENGTH
        ):
            errors.append(
                FieldError(
                    PROPERTIES_KEY,
                    f"the value of {_quote(name)} is too long ({len(text)} characters; "
                    f"at most {MAX_PROPERTY_VALUE_LENGTH})",
                )
            )
    return errors


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _properties(raw: Mapping[str, object], errors: list[FieldError]) -> dict[str, str]:
    pairs = _raw_properties(raw, errors)
    limit_errors = property_limit_errors(pairs)
    if limit_errors:
        errors.extend(limit_errors)
        return {}
    properties: dict[str, str] = {}
    for raw_key, raw_value in pairs:
        if not isinstance(raw_key, str) or _not_storable(raw_key):
            errors.append(FieldError(PROPERTIES_KEY, f"property names must be text, not {raw_key!r}"))
            continue
        key = raw_key.strip()
        if not key:
            errors.append(FieldError(PROPERTIES_KEY, "a property has no name"))
            continue
        # Compared without case so that a "Phone" column is not silently stored as a property.
        if key.casefold() in (*STANDARD_FIELDS, PROPERTIES_KEY):
            errors.append(
                FieldError(PROPERTIES_KEY, f"{_quote(key)} is a reserved field name and cannot be a property")
            )
            continue
        value = _property_value(key, raw_value)
        if isinstance(value, _Invalid):
            errors.append(FieldError(PROPERTIES_KEY, value.message))
        elif value is not None:
            if key in properties and properties[key] != value:
                errors.append(
                    FieldError(PROPERTIES_KEY, f"{_quote(key)} is given twice with different values")
                )
                continue
            properties[key] = value
    return properties
