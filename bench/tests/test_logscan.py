import json

from bench.logscan import complete_entries

RELEASED = {"level": "INFO", "logger": "inventory.holds", "message": "hold released", "seat_id": "s1", "late_ms": 12.5}


def line(**fields) -> str:
    return json.dumps({**RELEASED, **fields}) + "\n"


def test_a_line_still_being_written_is_left_for_the_next_read():
    whole = line(seat_id="s1") + line(seat_id="s2")
    partial = line(seat_id="s3")[:40]
    assert [e["seat_id"] for e in complete_entries(whole + partial, "hold released")] == ["s1", "s2"]
    # Once the writer has finished it, the same line is read.
    assert [e["seat_id"] for e in complete_entries(whole + line(seat_id="s3"), "hold released")] == ["s1", "s2", "s3"]


def test_only_entries_with_that_message():
    text = line(message="hold released again?", seat_id="x") + line(seat_id="s1") + line(message="call", path="hold released")
    assert [e["seat_id"] for e in complete_entries(text, "hold released")] == ["s1"]


def test_nothing_whole_yet():
    assert list(complete_entries("", "hold released")) == []
    assert list(complete_entries(line()[:-1], "hold released")) == []
