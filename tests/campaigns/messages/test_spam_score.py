"""Every shipped locale's invitation email, as the SMTP server receives it, scored by SpamAssassin's local tests.

Runs `spamassassin -t -L` (local tests only: no DNS blocklists, no network) on the raw bytes. Needs Debian's
`spamassassin` (`apt-get install spamassassin`, as `.ci/run` does); skipped without it outside CI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import campaigns.messages
from campaigns.channels.email import SmtpConfig, SmtpEmail
from campaigns.definitions.campaign_file import parse_campaign_file
from campaigns.messages.compose import compose
from storage.enums import Channel
from storage.tables import Contact
from tests.fixtures.engine import PUBLIC_URL
from tests.fixtures.survey import CAMPAIGN
from tests.standins.smtp import SmtpSink

SPAMASSASSIN = shutil.which("spamassassin")
LOCALES = sorted(
    path.stem for path in (Path(campaigns.messages.__file__).parent / "translations").glob("*.yaml")
)
_STATUS = re.compile(r"^X-Spam-Status: \w+, score=(-?\d+(?:\.\d+)?)", re.MULTILINE)

pytestmark = pytest.mark.skipif(
    SPAMASSASSIN is None,
    reason="SpamAssassin is not installed: apt-get install spamassassin to run this test",
)


def spam_score(raw: bytes) -> tuple[float, str]:
    assert SPAMASSASSIN is not None
    result = subprocess.run(
        [SPAMASSASSIN, "-t", "-L"], input=raw, capture_output=True, timeout=120, check=True
    )
    report = result.stdout.decode(errors="replace")
    match = _STATUS.search(report)
    assert match, report
    return float(match.group(1)), report


@pytest.mark.parametrize("locale", LOCALES)
def test_the_invitation_email_scores_at_most_zero_in_spamassassin(smtp_sink: SmtpSink, locale: str) -> None:
    [definition] = parse_campaign_file(CAMPAIGN).campaigns
    contact = Contact(name="Ana Lima", properties={}, locale=locale)
    message = compose(
        definition,
        contact,
        channel=Channel.EMAIL,
        address="ana@example.com",
        token="t0k3n",
        public_base_url=PUBLIC_URL,
    )
    config = SmtpConfig(
        host=smtp_sink.host, port=smtp_sink.port, sender="Acme <nps@acme.example>", starttls=False
    )
    SmtpEmail(config).send(message)
    [received] = smtp_sink.wait_for(1)
    score, report = spam_score(received.raw)
    assert score <= 0, report[report.find("Content analysis details") :]
