"""Importing a contacts CSV: validate every row, upsert the good ones in batches, report the bad ones by line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from campaigns.contacts.csv_file import CsvRow, RowProblem, read_contacts_csv
from campaigns.contacts.store import existing_external_ids, too_many_properties_error, upsert_contacts
from campaigns.contacts.validation import (
    NO_CHANNEL_MESSAGE,
    ContactInput,
    ContactValidationError,
    lacks_channel,
    validate_contact,
)
from storage.audit import record_audit
from storage.db import Database
from storage.enums import AuditAction, AuditEntity

DEFAULT_BATCH_SIZE = 1000


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    @property
    def ok(self) -> bool:
        return not self.problems


def import_contacts(
    data: bytes,
    *,
    db: Database,
    default_region: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    actor: str = "cli",
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import `data` (the file's bytes). Raises CsvFileError when the file as a whole is unusable.
    `on_progress` receives the last line read after each batch.

    Each batch is one transaction: a batch is written whole or not at all.
    """
    report = ImportReport()
    batch: list[tuple[int, ContactInput]] = []
    line = 0
    for item in read_contacts_csv(data):
        line = item.line
        if isinstance(item, RowProblem):
            report.problems.append(item)
            continue
        contact = _validate(item, default_region, report)
        if contact is not None:
            batch.append((item.line, contact))
        if len(batch) >= batch_size:
            _write(batch, db, report)
            batch = []
            if on_progress is not None:
                on_progress(line)
    if batch:
        _write(batch, db, report)
    if on_progress is not None:
        on_progress(line)
    report.problems.sort(key=lambda problem: problem.line)
    with db.transaction() as session:
        record_audit(
            session=session,
            actor=actor,
            action=AuditAction.CONTACTS_IMPORTED,
            entity_type=AuditEntity.CONTACT,
            created=report.created,
            updated=report.updated,
            rejected=len(report.problems),
        )
    return report


def _validate(row: CsvRow, default_region: str | None, report: ImportReport) -> ContactInput | None:
    try:
        return validate_contact(row.values, default_region=default_region)
    except ContactValidationError as error:
        report.problems.append(RowProblem(line=row.line, reason=str(error)))
        return None


def _write(batch: list[tuple[int, ContactInput]], db: Database, report: ImportReport) -> None:
    with db.transaction() as session:
        unreachable = [contact.external_id for _, contact in batch if lacks_channel(contact)]
        known = existing_external_ids(unreachable, session=session)
        writable = []
        for line, contact in batch:
            if lacks_channel(contact) and contact.external_id not in known:
                report.problems.append(RowProblem(line=line, reason=f"new contact {NO_CHANNEL_MESSAGE}"))
            else:
                writable.append(contact)
        result = upsert_contacts(writable, session=session)
    for line, contact in batch:
        merged = result.too_many_properties.get(contact.external_id)
        if merged is not None:
            error = too_many_properties_error(merged)
            report.problems.append(RowProblem(line=line, reason=f"{error.field}: {error.message}"))
    report.created += result.created
    report.updated += result.updated
