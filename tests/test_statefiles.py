"""src/core/statefiles.py: every file under STATE_DIR named once, and the readiness record's reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.core import statefiles
from src.core.settings import REPO_ROOT, default_str
from src.core.statefiles import EMERGENCY_PLAN_FILE, READY_FILE, RUNS_FILE, read_ready_record

# every upper-case name is a file's, but MAX_* (the readers' size limits)
NAMES = {name: value for name, value in vars(statefiles).items() if name.isupper() and not name.startswith("MAX_")}


def test_each_state_file_has_one_distinct_plain_name():
    assert len(NAMES) >= 9 and all(isinstance(value, str) for value in NAMES.values())
    assert len(set(NAMES.values())) == len(NAMES)  # no two files share a name
    assert all(value == Path(value).name and not value.startswith(".") for value in NAMES.values())


def test_the_emergency_plans_default_path_is_the_named_file_in_the_default_state_dir():
    """EMERGENCY_GAMEPLAN_PATH is a setting of its own (src/core/settings.py); its default must stay
    the name declared here, in the default STATE_DIR."""
    assert Path(default_str("EMERGENCY_GAMEPLAN_PATH")) == Path(default_str("STATE_DIR")) / EMERGENCY_PLAN_FILE


def test_the_production_wrapper_appends_its_refusals_to_the_same_journal():
    """The shell wrapper cannot import the name: it must spell it the same way."""
    script = (REPO_ROOT / "docker" / "gateway" / "scripts" / "production-startup.sh").read_text(encoding="utf-8")
    assert f'"$dir/{RUNS_FILE}"' in script


def test_the_readiness_record_is_a_json_object_or_none(tmp_path):
    assert read_ready_record(tmp_path) is None  # no record
    record = {"pid": 42, "strategy": "A", "trading_authorized": True}
    (tmp_path / READY_FILE).write_text(json.dumps(record), encoding="utf-8")
    assert read_ready_record(tmp_path) == record


@pytest.mark.parametrize("content", [b"", b'{"pid": 4', b"[1, 2]", b'"ready"', b"\xff\xfe"])
def test_a_torn_or_foreign_readiness_record_is_none(tmp_path, content):
    (tmp_path / READY_FILE).write_bytes(content)
    assert read_ready_record(tmp_path) is None


def test_a_readiness_record_that_cannot_be_read_is_none(tmp_path):
    (tmp_path / READY_FILE).mkdir()  # a directory where the record should be: OSError, not a crash
    assert read_ready_record(tmp_path) is None
