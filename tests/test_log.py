"""Progress goes through `logging` (`tuneship.*` loggers): shown by default, silenced by a Python caller."""

from __future__ import annotations

import logging

from tests.conftest import ticket_rows, write_csv
from tuneship import log
from tuneship.trainer.classification import load_classification_data


def bad_file(tmp_path):
    rows = ticket_rows(12)
    rows[0]["text"] = ""
    return str(write_csv(tmp_path / "bad.csv", rows))


def test_library_messages_are_shown_by_default_and_can_be_silenced(tmp_path, capsys):
    load_classification_data(bad_file(tmp_path), drop_invalid=True)
    assert "dropped 1 invalid row(s) of 12" in capsys.readouterr().out
    log.set_verbosity(logging.WARNING)
    try:
        load_classification_data(bad_file(tmp_path), drop_invalid=True)
        assert capsys.readouterr().out == ""
    finally:
        log.set_verbosity(logging.INFO)


def test_records_can_go_to_the_application_s_own_handlers(tmp_path, caplog):
    log.use_root_handlers()
    try:
        with caplog.at_level(logging.INFO, logger="tuneship"):
            load_classification_data(bad_file(tmp_path), drop_invalid=True)
        record = next(r for r in caplog.records if "dropped 1 invalid row" in r.getMessage())
        assert record.name == "tuneship.data.classification"
    finally:
        log.use_default_handler()
