"""make ui's SQLite rules (launchers.ui): what each one prevents, shown on two connections to one database
file, with and without the rule. Each listener goes on the test's own engines, never on every Engine."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from launchers import SQLITE_LOCK_WAIT_SECONDS
from launchers.ui import lock_before_savepoints, serialize_transactions


def _engine(path, rule=None):
    engine = create_engine(f"sqlite:///{path}?timeout={SQLITE_LOCK_WAIT_SECONDS}")
    if rule is not None:
        rule(engine)
    return engine


def _database(tmp_path):
    path = tmp_path / "airflow.db"
    with _engine(path).begin() as conn:
        conn.execute(text("CREATE TABLE dag_run (id INTEGER PRIMARY KEY, state TEXT, clear_number INTEGER)"))
        conn.execute(text("INSERT INTO dag_run VALUES (1, 'running', 0)"))
    return path


def _in_thread(work) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout=1.0)  # long enough to finish if nothing makes it wait
    return thread


def _backfill_like(tmp_path, rule):
    """The API server's backfill: a savepoint, a read, another process commits, then the savepoint's write.
    Returns (whether the other writer had to wait, the rows at the end)."""
    path = _database(tmp_path)
    api, scheduler = _engine(path, rule), _engine(path, rule)

    def scheduler_writes():
        with scheduler.begin() as conn:
            conn.execute(text("UPDATE dag_run SET state = 'success' WHERE id = 1"))

    with Session(api) as session:
        with session.begin_nested():
            assert session.execute(text("SELECT count(*) FROM dag_run")).scalar() == 1
            writer = _in_thread(scheduler_writes)
            waited = writer.is_alive()
            session.execute(text("INSERT INTO dag_run VALUES (2, 'queued', 0)"))
        session.commit()
    writer.join(timeout=SQLITE_LOCK_WAIT_SECONDS)
    assert not writer.is_alive()
    with _engine(path).connect() as conn:
        return waited, conn.execute(text("SELECT id, state FROM dag_run ORDER BY id")).all()


def test_a_savepoint_takes_the_write_lock_and_the_other_writer_waits(tmp_path):
    waited, rows = _backfill_like(tmp_path, lock_before_savepoints)
    assert waited
    assert rows == [(1, "success"), (2, "queued")]  # both writes landed, one after the other


def test_without_it_the_savepoint_write_is_refused_at_once(tmp_path):
    """What Airflow's API server meets on SQLite by default: the backfill's write fails (HTTP 503)."""
    with pytest.raises(OperationalError, match="database is locked"):
        _backfill_like(tmp_path, None)


def _clear_during_a_decision(tmp_path, rule) -> tuple[str, bool]:
    """The scheduler reads a run and decides "success"; a clear queues the run meanwhile. Returns (the run's
    final state, whether the clear had to wait)."""
    path = _database(tmp_path)
    scheduler, api = _engine(path, rule), _engine(path, rule)

    def clear():
        with api.begin() as conn:
            conn.execute(text("UPDATE dag_run SET state = 'queued', clear_number = clear_number + 1 WHERE id = 1"))

    with scheduler.connect() as conn, conn.begin():
        assert conn.execute(text("SELECT state FROM dag_run WHERE id = 1")).scalar() == "running"
        clearing = _in_thread(clear)
        waited = clearing.is_alive()
        conn.execute(text("UPDATE dag_run SET state = 'success' WHERE id = 1"))  # decided from the read
    clearing.join(timeout=SQLITE_LOCK_WAIT_SECONDS)
    assert not clearing.is_alive()
    with _engine(path).connect() as conn:
        state, clears = conn.execute(text("SELECT state, clear_number FROM dag_run WHERE id = 1")).one()
    assert clears == 1
    return state, waited


def test_serialized_transactions_keep_a_clear_made_during_a_decision(tmp_path):
    """make airflow's rule: the clear waits for the decision and is not overwritten."""
    assert _clear_during_a_decision(tmp_path, serialize_transactions) == ("queued", True)


def test_by_default_a_clear_made_during_a_decision_is_lost(tmp_path):
    """The window the README describes for make ui's components (which cannot all be serialized)."""
    assert _clear_during_a_decision(tmp_path, None) == ("success", False)
