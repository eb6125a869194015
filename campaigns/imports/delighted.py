"""`nps import delighted FILE.csv`: a Delighted responses export in, so that trends run on across the switch.

Each row becomes a response with the person's properties as they were when they answered (the snapshot that
`nps compare` and the filters read), its tags, notes and permalink kept beside it (`responses.imported`), and its
person a contact: found by email (in any case) or phone, or by the external id an earlier import gave it (never
updated from history), else created with the email (or phone) as its external id.
A re-import adds nothing twice: each response is keyed by Delighted's response id (`responses.source_key`).
Imported answers are history: they open no follow-up and post no Slack alert.

Delighted's unsubscribed and bounced people lists become opt-outs in the consent ledger (source `import`).
Rows that cannot be read are reported with their line and reason; the rest of the file is imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.contacts.consents import Cause, set_consent
from campaigns.contacts.store import upsert_contact
from campaigns.contacts.validation import ContactValidationError, validate_contact
from campaigns.imports.delighted_rows import (
    DelightedResponse,
    RowError,
    column_map,
    header_key,
    parse_time,
    read_row,
)
from campaigns.scores.nps import categorize
from storage.db import Database
from storage.enums import Channel, ConsentSource, ConsentStatus
from storage.tables import Consent, Contact, Response

BATCH = 500
PeopleList = Literal["unsubscribed", "bounced"]


class DelightedFileError(ValueError):
    """The file as a whole cannot be read: not UTF-8, no header, no score column."""


@dataclass
class ImportReport:
    imported: int = 0
    already_imported: int = 0
    other_surveys: int = 0  # CSAT, CES... rows: not NPS answers
    contacts_created: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _rows(source: IO[bytes]) -> Iterator[tuple[int, dict[str, str], dict[str, str]]]:
    """(line, row, column map) for each row, streamed."""
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    line = 0  # where the last row read ended: a broken row starts on the next line
    try:
        header = reader.fieldnames
        if not header:
            raise DelightedFileError("the file is empty: no header line")
        mapping = column_map(list(header))
        line = reader.line_num
        for row in reader:
            yield line + 1, row, mapping
            line = reader.line_num
    except UnicodeDecodeError:
        raise DelightedFileError("the file is not valid UTF-8 (save it as UTF-8)") from None
    except csv.Error as error:
        raise DelightedFileError(f"line {line + 1}: {error}") from None


def _channel(answer: DelightedResponse, contact: Contact | None) -> Channel:
    """Delighted's own channel when it is one of ours; web, link and kiosk answers count as email when the
    person has an address, else SMS."""
    if answer.channel in (Channel.SMS.value, Channel.EMAIL.value):
        return Channel(answer.channel)
    return Channel.EMAIL if answer.email or contact is None or contact.email else Channel.SMS


Known = dict[str, Contact]  # contacts by email in lower case: the batch's people, read in one statement


def _known_by_email(session: Session, batch: list[tuple[int, DelightedResponse]]) -> Known:
    """Contacts with the batch's addresses in any case: Delighted kept what people typed ("ANA.LIMA@example.com")
    and our contacts file may hold "Ana.Lima@example.com"; providers treat the two as one mailbox. One scan of
    the column per batch (lower() uses no index), the lowest id first."""
    wanted = {answer.email.strip().lower() for _, answer in batch if answer.email}
    if not wanted:
        return {}
    known: Known = {}
    query = select(Contact).where(func.lower(Contact.email).in_(wanted)).order_by(Contact.id)
    for contact in session.scalars(query):
        known.setdefault((contact.email or "").lower(), contact)
    return known


def _contact(
    answer: DelightedResponse, session: Session, now: datetime, known: Known
) -> tuple[Contact | None, bool]:
    """The person's contact, found or created; ContactValidationError for an address that is not one."""
    if not (answer.email or answer.phone):
        return None, False
    item = validate_contact(
        {"external_id": "-", "name": answer.name, "email": answer.email, "phone": answer.phone}
    )
    email = item.email.lower() if item.email else None
    found = known.get(email) if email else None
    if found is None and item.phone:
        found = session.scalars(
            select(Contact).where(Contact.phone == item.phone).order_by(Contact.id)
        ).first()
    if found is not None:
        return found, False
    external_id = email or item.phone or ""
    found = session.scalars(select(Contact).where(Contact.external_id == external_id)).first()
    created = False
    if found is None:  # else made by an earlier import, its address changed since: history never overwrites
        found, created = upsert_contact(
            replace(item, external_id=external_id, email=email), session=session, now=now
        )
    if email:
        known[email] = found
    return found, created


def _same_email(email: str) -> ColumnElement[bool]:
    """Contacts with this address in any case (a scan: opt-out lists are short)."""
    return func.lower(Contact.email) == email.lower()


def _stored_addresses(session: Session, channel: Channel, address: str) -> list[str]:
    """The address as contacts have it stored, every spelling of it, so that an opt-out applies to the address
    we send to; lower case when no contact has it."""
    if channel is not Channel.EMAIL:
        return [address]
    stored = session.scalars(select(Contact.email).where(_same_email(address)).distinct()).all()
    return sorted(email for email in stored if email) or [address.lower()]


def _store(
    answer: DelightedResponse, session: Session, report: ImportReport, now: datetime, known: Known
) -> None:
    contact, created = _contact(answer, session, now, known)
    report.contacts_created += created
    session.add(
        Response(
            contact_id=contact.id if contact else None,
            channel=_channel(answer, contact),
            score=answer.score,
            category=categorize(answer.score),
            comment=answer.comment,
            contact_snapshot=answer.properties,
            answered_at=answer.answered_at,
            commented_at=answer.answered_at if answer.comment else None,
            source_key=answer.key,
            imported={"source": "delighted", **answer.kept},
        )
    )


def _write(
    batch: list[tuple[int, DelightedResponse]], db: Database, report: ImportReport, now: datetime
) -> None:
    """One transaction for the batch. A concurrent import of the same file may commit some of its responses (or
    contacts) first: the unique keys then refuse ours, and the batch is read again, those now already there."""
    for attempt in range(3):
        counted = ImportReport()
        try:
            _write_once(batch, db, counted, now)
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        report.imported += counted.imported
        report.already_imported += counted.already_imported
        report.contacts_created += counted.contacts_created
        report.problems += counted.problems
        return


def _write_once(
    batch: list[tuple[int, DelightedResponse]], db: Database, report: ImportReport, now: datetime
) -> None:
    keys = [answer.key for _, answer in batch]
    with db.transaction() as session:
        seen = set(session.scalars(select(Response.source_key).where(Response.source_key.in_(keys))))
        known = _known_by_email(session, batch)
        for line, answer in batch:
            if answer.key in seen:
                report.already_imported += 1
                continue
            seen.add(answer.key)
            try:  # the addresses are validated before anything is written: a refusal leaves nothing behind
                _store(answer, session, report, now, known)
            except ContactValidationError as error:
                report.problems.append((line, str(error)))
                continue
            report.imported += 1


def import_delighted(
    db: Database, source: IO[bytes], *, now: datetime, on_problem: Callable[[int, str], None] | None = None
) -> ImportReport:
    """Import a Delighted responses CSV, BATCH rows a transaction; re-importing adds nothing twice."""
    report = ImportReport()
    try:
        _import_rows(db, source, report, now)
    except DelightedFileError as error:
        if report.imported or report.already_imported:
            raise DelightedFileError(
                f"{error}; the {report.imported} responses before it were imported "
                f"({report.already_imported} were already there): mend the file and import it again"
            ) from None
        raise
    if on_problem is not None:
        for line, reason in report.problems:
            on_problem(line, reason)
    return report


def _import_rows(db: Database, source: IO[bytes], report: ImportReport, now: datetime) -> None:
    """The rows into `report`; on a file error, the rows read before it are written first."""
    batch: list[tuple[int, DelightedResponse]] = []
    try:
        _read_rows(db, source, report, now, batch)
    except DelightedFileError:
        if batch:
            _write(batch, db, report, now)
        raise
    if batch:
        _write(batch, db, report, now)


def _read_rows(
    db: Database,
    source: IO[bytes],
    report: ImportReport,
    now: datetime,
    batch: list[tuple[int, DelightedResponse]],
) -> None:
    checked = False
    for line, row, mapping in _rows(source):
        if not checked:
            if "score" not in mapping.values():
                raise DelightedFileError(f"the header has no score column (found: {', '.join(mapping)})")
            checked = True
        try:
            answer = read_row(row, mapping)
        except RowError as error:
            report.problems.append((line, str(error)))
            continue
        if answer is None:
            report.other_surveys += 1
            continue
        batch.append((line, answer))
        if len(batch) >= BATCH:
            _write(batch, db, report, now)
            batch.clear()


@dataclass
class OptOutReport:
    opted_out: int = 0
    already: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def _addresses(row: dict[str, str]) -> list[tuple[Channel, str]]:
    cells = {header_key(column): (value or "").strip() for column, value in row.items() if column}
    email = next((cells[k] for k in ("email", "person email", "email address") if cells.get(k)), "")
    phone = next((cells[k] for k in ("phone", "phone number", "person phone number") if cells.get(k)), "")
    found: list[tuple[Channel, str]] = []
    if email:
        found.append((Channel.EMAIL, validate_contact({"external_id": "x", "email": email}).email or email))
    if phone:
        found.append((Channel.SMS, validate_contact({"external_id": "x", "phone": phone}).phone or phone))
    return found


def import_opt_outs(db: Database, source: IO[bytes], which: PeopleList, *, now: datetime) -> OptOutReport:
    """Delighted's unsubscribed or bounced people as opt-outs of their addresses, once each."""
    report = OptOutReport()
    cause = Cause(ConsentSource.IMPORT, detail=f"delighted {which}")
    for line, row, _ in _rows(source):
        try:
            addresses = _addresses(row)
        except ContactValidationError as error:
            report.problems.append((line, str(error)))
            continue
        if not addresses:
            report.problems.append((line, "no email or phone number"))
            continue
        when = _when(row, which) or now
        with db.transaction() as session:
            for channel, written in addresses:
                for address in _stored_addresses(session, channel, written):
                    if _opted_out(session, channel, address):
                        report.already += 1
                    elif set_consent(
                        channel, address, ConsentStatus.OPTED_OUT, cause=cause, at=when, session=session
                    ):
                        report.opted_out += 1
    return report


def _when(row: dict[str, str], which: PeopleList) -> datetime | None:
    for column, value in row.items():
        if column and header_key(column) in (f"{which} at", "date", "created at") and value and value.strip():
            try:
                return parse_time(value)
            except RowError:
                return None
    return None


def _opted_out(session: Session, channel: Channel, address: str) -> bool:
    status = session.scalar(
        select(Consent.status).where(Consent.channel == channel, Consent.address == address)
    )
    return status is ConsentStatus.OPTED_OUT
