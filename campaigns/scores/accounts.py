"""Account (B2B) NPS: responses grouped by an account property, each account's NPS and the mix of roles that
answered for it. One GROUP BY over (account, role, category) in the database."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.scores import anonymity
from campaigns.scores import nps as npsmath
from campaigns.scores.filters import NO_FILTERS, Filters, Scope, check_key, fold
from campaigns.scores.periods import Period
from campaigns.scores.queries import NONE_LABEL
from storage.enums import Category
from storage.tables import Response


@dataclass(frozen=True)
class AccountReport:
    account: str
    tally: npsmath.Tally
    nps: int | None
    margin: float | None
    roles: dict[str, int] = field(default_factory=dict)  # role -> responses, most first
    hidden: bool = False  # eNPS: under 5 answers, some anonymous (campaigns.scores.anonymity); tally empty

    @property
    def responses(self) -> int:
        return self.tally.responses


def accounts(
    *,
    session: Session,
    period: Period,
    filters: Filters = NO_FILTERS,
    account_property: str = "account",
    role_property: str = "role",
) -> list[AccountReport]:
    """Accounts by number of responses, most first (then by name); answers without the property are "(none)"."""
    scope = Scope.resolve(session, filters)
    account = Response.contact_snapshot[check_key(account_property)].as_string()
    role = Response.contact_snapshot[check_key(role_property)].as_string()
    rows = session.execute(
        select(
            account,
            role,
            Response.category,
            func.count(),
            anonymity.anonymous_answers(session),
        )
        .where(*scope.responses(period))
        .group_by(account, role, Response.category)
    ).all()
    categories: dict[str, Counter[str]] = {}
    roles: dict[str, Counter[str]] = {}
    names: dict[str, Counter[str]] = {}
    anonymous_roles: dict[str, Counter[str]] = {}
    for name, who, category, count, anonymous_count in rows:
        key, role_name = fold(name), str(who).strip() if fold(who) else NONE_LABEL
        categories.setdefault(key, Counter())[Category(category).value] += int(count)
        categories[key][anonymity.ANONYMOUS_KEY] += int(anonymous_count)
        roles.setdefault(key, Counter())[role_name] += int(count)
        anonymous_roles.setdefault(key, Counter())[role_name] += int(anonymous_count)
        names.setdefault(key, Counter())[str(name).strip() if key else NONE_LABEL] += int(count)
    keys = list(categories)
    counted = {
        key: npsmath.Tally(
            categories[key]["promoter"], categories[key]["passive"], categories[key]["detractor"]
        )
        for key in keys
    }
    people = anonymity.people_per_group(session, scope, period, account, categories, fold)
    sizes = [  # one person's anonymous answers count once: an account only they have is one person
        anonymity.group_size(
            counted[key].responses, categories[key][anonymity.ANONYMOUS_KEY], people.get(key)
        )
        for key in keys
    ]
    # the accounts add up to the score of the period: a lone small hidden one hides the smallest beside it
    hide = anonymity.complement(
        sizes,
        [
            anonymity.must_hide(size, categories[key][anonymity.ANONYMOUS_KEY])
            for key, size in zip(keys, sizes, strict=True)
        ],
    )
    reports = []
    for key, hidden in zip(keys, hide, strict=True):
        tally = npsmath.Tally() if hidden else counted[key]
        shown_roles = {  # a role is a group too: "1 manager" of an eNPS account names the manager
            role_name: n
            for role_name, n in roles[key].most_common()
            if not hidden and not anonymity.must_hide(n, anonymous_roles[key][role_name])
        }
        reports.append(
            AccountReport(
                account=names[key].most_common(1)[0][0],
                tally=tally,
                nps=npsmath.nps(tally),
                margin=npsmath.margin_of_error(tally),
                roles=shown_roles,
                hidden=hidden,
            )
        )
    return sorted(reports, key=lambda r: (-r.responses, r.account))
