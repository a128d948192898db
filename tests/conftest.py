"""Shared fixtures: the shipped content, a records store per test, a controllable clock."""
from __future__ import annotations

import pytest

from support import CASES, ROOT, FakeClock  # noqa: F401


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


@pytest.fixture
def db_url(tmp_path) -> str:
    """The URL of a fresh, empty records database for one test (SQLite in the test's folder)."""
    return f"sqlite:///{tmp_path / 'records.db'}"


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
