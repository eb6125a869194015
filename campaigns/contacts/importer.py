"""Importing a contacts CSV: validate every row, upsert the good ones in batches, report the bad ones by line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

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
    rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)  # empty when they went to `on_problem`

    @property
    def imported(self) -> int:
        return self.created + self.updated

    @property
    def ok(self) -> bool:
        return not self.rejected


def import_contacts(
    source: IO[bytes],
    *,
    db: Database,
    default_region: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    actor: str = "cli",
    on_progress: Callable[[int], None] | None = None,
    on_problem: Callable[[RowProblem], None] | None = None,
) -> ImportReport:
    """Import the CSV read from the binary stream `source`. Raises CsvFileError when the file as a whole is
    unusable.

    The file is read, validated and written one batch at a time, so memory does not grow with the file. Each
    batch is one transaction: written whole or not at all, and a bad row later in the file never undoes an
    earlier batch. `on_progress` receives the last line read after each batch. Row problems go to
    `on_problem` in line order as each batch is done (collected in the report without it).
    """
    report = ImportReport()
    emit = on_problem or report.problems.append
    batch = _Batch()
    line = 0
    for item in read_contacts_csv(source):
        line = item.line
        if isinstance(item, RowProblem):
            batch.problems.append(item)
        else:
            contact = _validate(item, default_region, batch)
            if contact is not None:
                batch.rows.append((item.line, contact))
        if len(batch) >= batch_size:
            _write(batch, db, report, emit)
            batch = _Batch()
            if on_progress is not None:
                on_progress(line)
    _write(batch, db, report, emit)
    if on_progress is not None:
        on_progress(line)
    with db.transaction() as session:
        record_audit(
            session=session,
            actor=actor,
            action=AuditAction.CONTACTS_IMPORTED,
            entity_type=AuditEntity.CONTACT,
            created=report.created,
            updated=report.updated,
            rejected=report.rejected,
        )
    return report


@dataclass
class _Batch:
    """The rows read since the last write, and the problems found on their lines."""

    rows: list[tuple[int, ContactInput]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    def __len__(self) -> int:
        # Problems count too: a file of bad rows is reported batch by batch instead of held to the end.
        return len(self.rows) + len(self.problems)


def _validate(row: CsvRow, default_region: str | None, batch: _Batch) -> ContactInput | None:
    try:
        return validate_contact(row.values, default_region=default_region)
    except ContactValidationError as error:
        batch.problems.append(RowProblem(line=row.line, reason=str(error)))
        return None


def _write(batch: _Batch, db: Database, report: ImportReport, emit: Callable[[RowProblem], None]) -> None:
    """Upsert the batch in one transaction, then hand on its problems in line order."""
    problems = batch.problems
    if batch.rows:
        with db.transaction() as session:
            unreachable = [contact.external_id for _, contact in batch.rows if lacks_channel(contact)]
            known = existing_external_ids(unreachable, session=session)
            writable = []
            for line, contact in batch.rows:
                if lacks_channel(contact) and contact.external_id not in known:
                    problems.append(RowProblem(line=line, reason=f"new contact {NO_CHANNEL_MESSAGE}"))
                else:
                    writable.append(contact)
            result = upsert_contacts(writable, session=session)
        for line, contact in batch.rows:
            merged = result.too_many_properties.get(contact.external_id)
            if merged is not None:
                error = too_many_properties_error(merged)
                problems.append(RowProblem(line=line, reason=f"{error.field}: {error.message}"))
        report.created += result.created
        report.updated += result.updated
    report.rejected += len(problems)
    for problem in sorted(problems, key=lambda problem: problem.line):
        emit(problem)
