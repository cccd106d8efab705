"""Run logging: a sentence on the console, the traceback in the file, secrets in neither."""

from __future__ import annotations

import logging

from src.orchestration.ops.logsetup import setup_logging


def test_console_gets_one_line_the_file_gets_the_traceback_and_secrets_are_redacted(tmp_path, capsys):
    secret = "hunter2-CANARY"
    path = setup_logging(tmp_path / "logs", "run123", (secret,))
    try:
        try:
            raise ValueError(f"boom with {secret}")
        except ValueError:
            logging.getLogger("src.test").error("crashed: %s", f"password {secret}", exc_info=True)
    finally:
        for handler in list(logging.getLogger().handlers):
            handler.close()
            logging.getLogger().removeHandler(handler)
    console = capsys.readouterr().err
    text = path.read_text()
    assert path.name.startswith("orchestrator_") and path.name.endswith("_run123.log")
    assert console.count("\n") == 1 and "Traceback" not in console and "crashed: password ***" in console
    assert "Traceback (most recent call last)" in text and "ValueError: boom with ***" in text
    assert secret not in console + text


def test_an_unwritable_log_dir_falls_back_to_stderr(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert setup_logging(blocker / "logs", "run1", ()) is None
    assert "cannot write the log file" in capsys.readouterr().err
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
