"""`kill -9` during a campaign: every invitation ends in exactly one final state, nobody is texted twice, none lost.

The kill points are drawn once from FAULTS_SEED: after how many sends the fake Twilio has received, and which
process dies; the same seed kills at the same points. A killed worker's claims are settled by the processes that
remain, after the claim timeout; the suite does not wait the timeout out on the wall clock, it makes the dead
workers' claims that old (`expire_claims`), the fast clock of this scenario.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from storage.db import Database, upgrade
from tests.faults.harness import (
    SEED,
    Outcome,
    Processes,
    claimed_by,
    expire_claims,
    figure,
    nps_env,
    outcome,
    pending,
    prepare_outbox,
    size,
    states,
    wait_until,
)
from tests.fixtures.own_postgres import PostgresServer
from tests.standins.fake_twilio import FakeTwilio

pytestmark = pytest.mark.faults

INVITATIONS = size("INVITATIONS", 5000, 1000)
KILLS = size("KILLS", 20, 10)
SEND_SECONDS = 0.05  # each send's answer is this late, so a kill lands with sends in flight
PHASE_TIMEOUT = 180


def kill_points(total: int, kills: int, rng: random.Random) -> list[int]:
    """After how many sends each kill lands, spread over the campaign."""
    return sorted(rng.sample(range(total // 20, total * 9 // 10), kills))


def check(result: Outcome) -> None:
    assert result.texted_twice == 0, result.examples
    assert result.lost == 0, (result.states, result.examples)
    assert result.failed_though_texted == 0, result.examples
    assert sum(result.states.values()) == INVITATIONS


def test_kill_9_of_two_postgresql_workers_20_times_texts_nobody_twice_and_loses_nothing(
    own_postgres: PostgresServer, fake_twilio: FakeTwilio, processes: Processes
) -> None:
    url = own_postgres.new_database()
    container = prepare_outbox(url, fake_twilio, INVITATIONS)
    db = container.db
    env = nps_env(url, fake_twilio.url)
    fake_twilio.set_latency(SEND_SECONDS)
    rng = random.Random(SEED + 1)
    workers = [processes.worker(env), processes.worker(env)]
    dead: list[str] = []
    for point in kill_points(INVITATIONS, KILLS, rng):
        wait_until(
            lambda p=point: fake_twilio.count() >= p or not any(w.running() for w in workers),
            timeout=PHASE_TIMEOUT,
            what=f"{point} sends",
        )
        victim = rng.randrange(2)
        workers[victim].wait_started()
        workers[victim].kill9()
        dead.append(workers[victim].worker_id or "?")
        workers[victim] = processes.worker(env)
    for worker in workers:
        worker.finish(timeout=PHASE_TIMEOUT)

    # The claims the dead left behind are past the claim timeout now; the next worker settles them.
    stale = states(db)["claimed"]
    expire_claims(db)
    reconcilers = [processes.worker(env), processes.worker(env)]  # two at once, as after a restart
    for reconciler in reconcilers:
        reconciler.finish(timeout=PHASE_TIMEOUT)
    result = outcome(db, fake_twilio)
    figure(
        f"kill -9 x{len(dead)} (PostgreSQL, 2 workers, seed {SEED}): {result.summary()}; {stale} claims left by the dead, "
        f"states {dict(result.states)}"
    )
    container.db.dispose()
    check(result)


def test_kill_9_of_a_worker_beside_nps_serve_on_sqlite_20_times_texts_nobody_twice_and_loses_nothing(
    tmp_path: Path, fake_twilio: FakeTwilio, processes: Processes
) -> None:
    url = f"sqlite:///{tmp_path / 'nps.db'}"
    migrated = Database.connect(url)
    upgrade(migrated.engine)
    migrated.dispose()
    container = prepare_outbox(url, fake_twilio, INVITATIONS)
    db = container.db
    env = nps_env(url, fake_twilio.url)
    fake_twilio.set_latency(SEND_SECONDS)
    rng = random.Random(SEED + 2)
    worker = processes.worker(env)
    worker.wait_started()  # the worker first: else `nps serve` could send the whole campaign before it is up
    server, _ = processes.serve(env)
    dead: list[str] = []
    for point in kill_points(INVITATIONS, KILLS, rng):
        wait_until(
            lambda p=point: fake_twilio.count() >= p or pending(db) == 0,
            timeout=PHASE_TIMEOUT,
            what=f"{point} sends",
        )
        worker.wait_started()
        worker.kill9()
        dead.append(worker.worker_id or "?")
        worker = processes.worker(env)
    worker.finish(timeout=PHASE_TIMEOUT)
    # Everything not claimed by the dead is settled by the live processes; then the dead's claims go stale and
    # the scheduler in `nps serve` reconciles them.
    wait_until(
        lambda: states(db)["planned"] == 0 and states(db)["claimed"] <= claimed_by(db, dead),
        timeout=PHASE_TIMEOUT,
        what="the live processes to drain the outbox",
        every=0.5,
    )
    stale = expire_claims(db, dead)
    processes.worker(env).finish(timeout=PHASE_TIMEOUT)  # reconciles beside the scheduler in `nps serve`
    settled = True
    try:
        wait_until(
            lambda: pending(db) == 0, timeout=60, what="nps serve to reconcile the dead's claims", every=0.5
        )
    except AssertionError:
        settled = False
    server.stop()
    result = outcome(db, fake_twilio)
    figure(
        f"kill -9 x{len(dead)} (SQLite, nps serve + worker, seed {SEED}): {result.summary()}; {stale} claims left by the dead"
        f"{'' if settled else ', not reconciled within 60 s'}, states {dict(result.states)}"
    )
    container.db.dispose()
    check(result)
