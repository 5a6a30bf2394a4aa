"""`dataset chop` and `dataset pad` on real (synthetic) audio, and their failure cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import tone

from ganspacesynth.data.folder import chop, pad, parse_note_name
from ganspacesynth.data.validate import InputProblems
from ganspacesynth.errors import UserError
from ganspacesynth.interfaces.cli import main


def _long_track(tmp_path):
    """10 s at 44.1 kHz stereo: 4 s of A3 (57), 3 s of silence, 3 s of E5 (76)."""
    sr = 44100
    a = tone(57, 4 * sr, sr, amp=0.5, decay=0.1)
    e = tone(76, 3 * sr, sr, amp=0.5, decay=0.1, seed=1)
    mono = np.concatenate([a, np.zeros(3 * sr, np.float32), e])
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "sub" / "my track.flac", stereo, sr)
    (src / "notes.txt").write_text("not audio, ignored")
    return src, mono, sr


def test_chop_names_counts_resampling_and_silence(tmp_path):
    src, mono, sr = _long_track(tmp_path)
    out = tmp_path / "out"
    summary = chop(src, out, length=16000, step=8000, sample_rate=16000, pitch=40, min_rms_db=-50)
    # 10 s at 16 kHz = 160000 samples → starts 0, 8000, …, 144000 = 19 positions; the 5 windows wholly
    # inside the silence (64000 ≤ start, start + 16000 ≤ 112000) are skipped.
    starts = [c["start"] for c in summary["clips"]]
    assert summary["skipped"]["silent"] == 5 and len(starts) == 14
    assert not any(64000 <= s <= 96000 for s in starts)
    names = sorted(p.name for p in out.glob("*.wav"))
    assert names == sorted(f"sub-my-track_{s // 8000 + 1}_40.wav" for s in starts)
    clip, rate = sf.read(out / "sub-my-track_2_40.wav")
    assert rate == 16000 and clip.shape == (16000,)
    # mono mix of (x, x/2) = 0.75 x, resampled: compare against an independent resample of that window
    import soxr

    expected = soxr.resample(0.75 * mono, sr, 16000)[8000:24000]
    assert np.max(np.abs(clip - expected)) < 2e-3
    assert parse_note_name("sub-my-track_2_40") == ("sub-my-track_2", 40)
    side = json.loads((out / "chop.json").read_text())
    assert side["clips"][0]["source"] == "sub-my-track" and side["settings"]["step"] == 8000


@pytest.mark.heavy
def test_chop_auto_pitch_and_confidence(tmp_path):
    src, _, _ = _long_track(tmp_path)
    out = tmp_path / "out"
    summary = chop(src, out, length=32000, step=32000, sample_rate=16000, pitch="auto", min_rms_db=-50)
    by_start = {c["start"]: c for c in summary["clips"]}
    assert by_start[0]["pitch"] == 57 and by_start[32000]["pitch"] == 57  # the A3 part
    assert by_start[128000]["pitch"] == 76  # inside the E5 part
    assert by_start[0]["pitch_confidence"] > 0.8
    assert (out / "sub-my-track_1_57.wav").is_file()


def test_chop_refuses_broken_input_without_output(tmp_path):
    src, _, _ = _long_track(tmp_path)
    (src / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (src / "empty.ogg").write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(InputProblems) as info:
        chop(src, out, length=16000, step=16000)
    assert len(info.value.problems) == 2 and "broken.wav" in info.value.problems[0]
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no temporary folder left behind either


def test_chop_cli_lists_problems_and_exits_1(tmp_path):
    src, _, _ = _long_track(tmp_path)
    (src / "broken.wav").write_bytes(b"nope")
    result = CliRunner().invoke(main, ["dataset", "chop", str(src), str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "broken.wav" in result.output and "nothing was written" in result.output
    assert "Traceback" not in result.output
    bad = CliRunner().invoke(main, ["dataset", "chop", str(src), str(tmp_path / "o"), "--pitch", "C4"])
    assert bad.exit_code == 1 and "--pitch" in bad.output


def test_pad_trims_with_fade_and_pads(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    long = tone(60, 24000, 16000, amp=0.5, decay=0.0)
    short = tone(67, 8000, 22050, amp=0.25, decay=0.0, seed=2)
    sf.write(src / "long.wav", long, 16000)
    sf.write(src / "short.wav", short, 22050)
    sf.write(src / "quiet.wav", np.zeros(1000, np.float32), 16000)
    out = tmp_path / "out"
    summary = pad(src, out, length=16000, sample_rate=16000, pitch=60, fade_ms=10)
    assert summary["skipped"] == ["quiet.wav"]
    a, _ = sf.read(out / "long_60.wav")
    b, _ = sf.read(out / "short_60.wav")
    assert a.shape == b.shape == (16000,)
    assert abs(np.max(np.abs(a)) - 1.0) < 1e-3  # normalised
    assert np.all(np.abs(a[-5:]) < 0.01)  # faded at the cut
    n_short = int(round(8000 * 16000 / 22050))
    assert np.all(b[n_short + 1 :] == 0) and np.max(np.abs(b[: n_short - 200])) > 0.5
    with pytest.raises(UserError, match="not empty"):
        pad(src, out, length=16000)
