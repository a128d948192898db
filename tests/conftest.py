"""Shared fixtures: the shipped content, a records store per test, a controllable clock."""
from __future__ import annotations

import pytest

from support import CASES, ROOT, FakeClock  # noqa: F401


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def playbook():
    from sopcoach.playbook import load_playbook
    return load_playbook(ROOT / "playbook")


@pytest.fixture(scope="session")
def bank(playbook):
    from sopcoach.quizbank import load_bank
    return load_bank(ROOT / "quizzes" / "bank", playbook)


@pytest.fixture(scope="session")
def blueprint(bank):
    from sopcoach.quizbank import load_blueprint
    return load_blueprint(ROOT / "quizzes" / "blueprint.yaml", bank)


@pytest.fixture
def records(tmp_path):
    from sopcoach.records import Records
    r = Records(f"sqlite:///{tmp_path / 'records.db'}")
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
