"""`nps doctor`: every setting and integration checked for real, one plain line per check.

Each module checks one thing and returns `Finding`s; none raises for what it finds, and every network call has a
timeout of `TIMEOUT_SECONDS`, so the doctor always finishes and always says what to do.
"""
