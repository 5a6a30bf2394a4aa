"""Atomic writes and safe JSON reads: outputs appear whole or not at all; bad files give one-line errors."""

from __future__ import annotations

import os

import pytest

from ganspacesynth.errors import UserError
from ganspacesynth.fileio import atomic_directory, atomic_path, read_json, write_json


def test_json_round_trip_and_refusals(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"x": [1, 2.5, "é"]})
    assert read_json(path) == {"x": [1, 2.5, "é"]}
    (tmp_path / "b.json").write_text("[1, 2]")
    assert read_json(tmp_path / "b.json", list) == [1, 2]
    with pytest.raises(UserError, match="does not hold a JSON object"):
        read_json(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"x": 1,')
    with pytest.raises(UserError, match=r"c\.json is not valid JSON") as err:
        read_json(tmp_path / "c.json")
    assert "\n" not in str(err.value)
    (tmp_path / "d.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(UserError, match="not valid JSON"):
        read_json(tmp_path / "d.json")
    with pytest.raises(UserError, match="cannot read .*missing.json"):
        read_json(tmp_path / "missing.json")


def test_failed_writes_leave_nothing(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
    folder = tmp_path / "set"
    with pytest.raises(RuntimeError):
        with atomic_directory(folder) as tmp:
            (tmp / "part").write_text("x")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
    with atomic_directory(folder) as tmp:
        (tmp / "part").write_text("x")
    assert (folder / "part").read_text() == "x" and os.listdir(tmp_path) == ["set"]
