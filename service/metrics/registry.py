"""One process's metrics: what happens in memory (requests, scheduler jobs) beside what the database knows.

Requests and job runs happen in this process and nowhere else, so they are prometheus-client counters and
histograms here; everything the rows record is read at scrape time by `service.metrics.database`. One registry
per container (never the library's global one): tests build many apps, and each reads only its own numbers.

Labels stay bounded whatever clients send: a route is its template (`/s/{token}`, never the token), a request
that matches no route is "unmatched", and a method outside the usual few is "other".
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from campaigns.clock import Clock
from service.metrics.database import DatabaseCollector
from storage.db import Database

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Webhooks and pages answer in milliseconds; Slack gives up after 3 s and Twilio after 15 s.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0, 15.0)


class Metrics:
    """The registry `GET /metrics` renders, and the few calls that feed it."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(DatabaseCollector(db, clock))
        self._requests = Counter(
            "nps_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "nps_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._job_runs = Counter(
            "nps_scheduler_job_runs", "Scheduled job runs in this process", ["job"], registry=self.registry
        )
        self._job_failures = Counter(
            "nps_scheduler_job_failures",
            "Scheduled job runs that raised (logged with their traceback)",
            ["job"],
            registry=self.registry,
        )
        self._job_success = Gauge(
            "nps_scheduler_job_last_success_timestamp_seconds",
            "When each job last finished without an error (Unix time)",
            ["job"],
            registry=self.registry,
        )
        self._leader = Gauge(
            "nps_scheduler_leader",
            "1 while this process holds the scheduler lease and runs the jobs; summed over processes it is 1",
            registry=self.registry,
        )

    def request_answered(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        route = route or UNMATCHED
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)

    def job_ran(self, job: str, *, ok: bool) -> None:
        self._job_runs.labels(job).inc()
        failures = self._job_failures.labels(job)  # 0 from the first run on, so rate() has a series
        if ok:
            self._job_success.labels(job).set(self.clock.now().timestamp())
        else:
            failures.inc()

    def watch_scheduler(self, is_leader: Callable[[], bool]) -> None:
        """Read the scheduler's leadership at each scrape (it lapses without an event when renewals stall)."""
        self._leader.set_function(lambda: float(is_leader()))

    def render(self) -> bytes:
        """The text exposition format; reads the database once (`DatabaseCollector`)."""
        return generate_latest(self.registry)
