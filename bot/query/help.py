"""What `/nps help` shows: every command, period and filter the grammar (`bot.query.grammar`) reads."""

HELP_TEXT = """\
*`/nps` answers questions about your Net Promoter Score.*

*Commands*
• `/nps` or `/nps score [period] [filters]` - NPS with its 95% margin of error, counts, response rate and the change against the previous period
• `/nps trend [weekly|monthly] [period] [filters]` - a chart of NPS over time (default: weekly over 12 weeks), and whether the last change is significant
• `/nps compare PROPERTY [period] [filters]` - NPS per value of a contact property, e.g. `plan` or `region` (default: last 90d), with each value's impact: the points it adds to the overall NPS
• `/nps themes [period]` - saved themes: how many comments mention each, and the NPS of those who do, against the period before
• `/nps theme NAME [weekly|monthly] [period]` - one saved theme over time (also `/nps themes show NAME`)
• `/nps themes add NAME "PHRASE" [filters]` / `/nps themes remove NAME` - track a phrase within some filters, or stop (admins only)
• `/nps comments [detractors|passives|promoters] [keyword] [period] [filters] [page N]` - the latest comments, newest first
• `/nps followups [mine|overdue|open]` - follow-ups (default: open)
• `/nps contact PHONE|EMAIL|ID` - a contact's answers and follow-ups (responders and admins; others see customers' names nowhere)
• `/nps campaigns` - campaigns and their status
• `/nps campaign pause|resume|run NAME` - campaign control (admins only)

*Periods* (default: `last 30d`)
`last 30d`, `last 12w`, `last 6m`, `last 1y` (rolling) • `this week|month|quarter|year` (to date) • \
`last week|month|quarter|year` (the previous full one) • `2026-01-01..2026-03-31` (inclusive dates)

*Filters* (combine with AND)
`campaign:NAME` • `channel:sms` or `channel:email` • `PROPERTY=VALUE`, e.g. `plan=enterprise` or `region="North America"`

*Examples*
`/nps score this quarter plan=enterprise`
`/nps trend monthly this year channel:sms`
`/nps compare region last quarter campaign:quarterly-pulse`
`/nps comments detractors "delivery" last 90d`"""
