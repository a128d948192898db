"""Shared fixtures: the shipped content, a records store per test, a controllable clock.

A test module that says ``pytestmark = pytest.mark.databases("sqlite", "postgresql")`` runs each of its
tests that uses ``db_url`` (or ``records``, ``inst``, ``service``) once per database; a test's own
``databases`` mark overrides its module's. Without the mark a test gets SQLite. PostgreSQL tests share one
private cluster per pytest worker (:mod:`pg_cluster`) and each gets a new empty database in it.
"""
from __future__ import annotations

import pytest

from pg_cluster import running_cluster
from support import CASES, ROOT, FakeClock  # noqa: F401

DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    """Run a test once per database its ``databases`` mark names (the test's own mark, else its module's)."""
    mark = metafunc.definition.get_closest_marker("databases")
    if mark is None or "db_url" not in metafunc.fixturenames:
        return
    unknown = set(mark.args) - set(DATABASES)
    if unknown:
        raise pytest.UsageError(f"unknown database in the databases mark: {', '.join(sorted(unknown))}")
    metafunc.parametrize("db_url", list(mark.args), indirect=True)


@pytest.fixture(scope="session", autouse=True)
def data_home_outside_the_checkout(tmp_path_factory):
    """Give the whole run a data home in a temporary folder, so no test writes the checkout's ``var/``
    (or a database named by the developer's own ``SOPCOACH_HOME``/``SOPCOACH_DB_URL``/``SOPCOACH_CONTENT``)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SOPCOACH_HOME", str(tmp_path_factory.mktemp("sopcoach-home")))
    patch.delenv("SOPCOACH_DB_URL", raising=False)
    patch.delenv("SOPCOACH_CONTENT", raising=False)
    yield
    patch.undo()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def figures(monkeypatch):
    """The review's and the trainer's charts hand over their matplotlib figure instead of its PNG bytes (the test
    closes it)."""
    import sopcoach.analytics.report as report
    import sopcoach.certification.charts as charts
    monkeypatch.setattr(report, "_figure_png", lambda fig: fig)
    monkeypatch.setattr(charts, "_figure_png", lambda fig: fig)


@pytest.fixture(scope="session")
def playbook():
    from sopcoach.content.playbook import load_playbook
    return load_playbook(ROOT / "playbook")


@pytest.fixture(scope="session")
def bank(playbook):
    from sopcoach.content.quizbank import load_bank
    return load_bank(ROOT / "quizzes" / "bank", playbook)


@pytest.fixture(scope="session")
def blueprint(bank):
    from sopcoach.content.quizbank import load_blueprint
    return load_blueprint(ROOT / "quizzes" / "blueprint.yaml", bank)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A PostgreSQL server of this pytest worker, started on first use and stopped (folder removed) at the end.

    Fails (does not skip) with one line naming ``make postgres`` when the server binaries are missing.
    """
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def db_url(request, tmp_path):
    """The URL of a fresh, empty records database for one test: SQLite in the test's folder, or (parameter
    ``postgresql``, see :func:`pytest_generate_tests`) a new database in the worker's PostgreSQL cluster,
    dropped after the test."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def records(db_url):
    from sopcoach.records.store import Records
    r = Records(db_url)
    yield r
    r.dispose()


@pytest.fixture
def inst(tmp_path, playbook, bank, blueprint, records):
    from sopcoach.config import Installation, Settings
    s = Settings(home=tmp_path, db_url=records.url, lang="zh-CN", content=ROOT)
    return Installation(s, playbook, bank, blueprint, records)


@pytest.fixture
def service(inst, clock):
    return inst.exam_service(clock)
