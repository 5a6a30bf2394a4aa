"""TFRecord framing and tf.train.Example parsing, checked against protobuf and TensorBoard's writer."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import tf_example, write_tfrecord

from ganspacesynth.data.tfrecord import encode_example, iter_records, parse_example, read_record_at, write_records
from ganspacesynth.errors import UserError


def test_parse_example_written_by_protobuf():
    audio = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    data = tf_example({"note_str": "guitar_acoustic_001-060-100", "pitch": [60], "audio": audio,
                       "qualities": [0, 1, 0, 0, 0, 0, 0, 1, 0, 0], "big": [2**40, -3]})
    feats = parse_example(data)
    assert feats["note_str"] == [b"guitar_acoustic_001-060-100"]
    assert feats["pitch"].tolist() == [60]
    np.testing.assert_array_equal(feats["audio"], audio)
    assert feats["qualities"].tolist() == [0, 1, 0, 0, 0, 0, 0, 1, 0, 0]
    assert feats["big"].tolist() == [2**40, -3]  # negative int64 are 10-byte varints


def test_encode_example_matches_protobuf_bytes():
    feats = {"pitch": [60], "audio": np.array([0.5, -0.25], np.float32), "name": "x"}
    ours = encode_example(feats)
    # Field order within a map may differ: compare by parsing each other's output.
    assert parse_example(ours)["audio"].tolist() == [0.5, -0.25]
    from helpers import _example_class

    msg = _example_class()()
    msg.ParseFromString(ours)
    assert list(msg.features.feature["pitch"].int64_list.value) == [60]
    assert list(msg.features.feature["audio"].float_list.value) == [0.5, -0.25]
    assert list(msg.features.feature["name"].bytes_list.value) == [b"x"]


def test_records_framing_both_ways(tmp_path):
    records = [b"hello", b"", bytes(range(256)) * 50]
    path = tmp_path / "tb.tfrecord"
    write_tfrecord(path, records)  # TensorBoard's framing and CRC
    read = list(iter_records(path))
    assert [d for _, d in read] == records
    assert read_record_at(path, read[2][0]) == records[2]
    ours = io.BytesIO()
    write_records(ours, records)
    assert ours.getvalue() == path.read_bytes()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_records_fail_cleanly(tmp_path, damage):
    path = tmp_path / "x.tfrecord"
    write_tfrecord(path, [b"a" * 100, b"b" * 100])
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-10]
    else:
        data[130] ^= 0xFF  # inside the second record's data
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="x.tfrecord"):
        list(iter_records(path))
