"""SoundFont rendering (TinySoundFont + pretty_midi's TimGM6mb.sf2) into a trainable dataset."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import SPECTRAL

pytest.importorskip("tinysoundfont")

from ganspacesynth.audio.io import rms_db  # noqa: E402
from ganspacesynth.data.dataset import DeviceBatcher, SpectrogramDataset, condition_specs, read_manifest  # noqa: E402
from ganspacesynth.data.gm import GM_PROGRAMS  # noqa: E402
from ganspacesynth.data.make import make_soundfont_dataset  # noqa: E402
from ganspacesynth.data.soundfont import Renderer, default_soundfont, parse_int_list  # noqa: E402
from ganspacesynth.errors import UserError  # noqa: E402
from ganspacesynth.interfaces.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def renderer():
    return Renderer(default_soundfont(), 16000)


def test_render_pitch_order_independence_and_release(renderer):
    n, hold = 16000, 12000
    flute = renderer.render(73, 69, 100, n, hold)  # A4 flute
    assert flute.shape == (n,) and flute.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(flute[2000:10000] * np.hanning(8000)))
    peak_hz = np.argmax(spectrum) * 16000 / 8000
    assert abs(peak_hz - 440) < 6
    # the note is released at `hold`: the tail is much quieter than the sustain
    assert rms_db(flute[-2000:]) < rms_db(flute[6000:10000]) - 20
    # no bleed: rendering after a loud low note gives the same samples as rendering first
    renderer.render(32, 28, 127, n, hold)
    again = renderer.render(73, 69, 100, n, hold)
    np.testing.assert_array_equal(again, flute)
    soft = renderer.render(73, 69, 25, n, hold)
    assert rms_db(soft) < rms_db(flute) - 6  # velocity is loudness


def test_soundfont_dataset_labels_and_silence(tmp_path, renderer):
    programs, pitches, velocities = [0, 33, 73, 122], [36, 60], [40, 110]
    # A high silence threshold makes some renders "silent": exactly those below it must be skipped.
    threshold = -30.0
    hold = int(0.75 * SPECTRAL.audio_length)
    levels = {(p, q, v): rms_db(renderer.render(p, q, v, SPECTRAL.audio_length, hold))
              for p in programs for q in pitches for v in velocities}
    expected_skipped = sorted(f"TimGM6mb-{p:03d}-{q:03d}-{v:03d}" for (p, q, v), db in levels.items() if db < threshold)
    assert 0 < len(expected_skipped) < len(levels)
    out = tmp_path / "gm"
    header = make_soundfont_dataset(out, programs=programs, pitches=pitches, velocities=velocities,
                                    spectral=SPECTRAL, silence_db=threshold, workers=1, valid_fraction=0.25,
                                    progress=False)
    assert sorted(header["skipped_silent"]) == expected_skipped
    m = read_manifest(out)
    assert m["count"] == len(levels) - len(expected_skipped)
    for e in m["examples"]:
        gm = GM_PROGRAMS[e["gm_program"]]
        assert (e["instrument_family"], e["instrument_source"]) == (gm.family, gm.source)
        assert abs(e["rms_db"] - levels[(e["gm_program"], e["pitch"], e["velocity"])]) < 0.5
    assert {e["instrument_family"] for e in m["examples"]} <= {"keyboard", "bass", "flute", "synth_lead"}
    # trainable as is: a loader and condition specs straight from the output
    ds = SpectrogramDataset(out, "train")
    specs = condition_specs(ds, ["pitch", "instrument_family", "instrument_source"])
    batch, labels = next(iter(DeviceBatcher(ds, batch_size=3)))
    assert batch.shape == (3, 2, 128, 256) and specs[0].classes == tuple(str(p) for p in range(36, 61))
    assert float(batch.abs().max()) < 1.5


def test_soundfont_cli_and_bad_options(tmp_path):
    runner = CliRunner()
    out = tmp_path / "gm"
    ok = runner.invoke(main, ["dataset", "soundfont", str(out), "--programs", "0,40", "--pitches", "60-61",
                              "--velocities", "100", "--preset", "tiny", "--workers", "2", "--valid-fraction", "0"])
    assert ok.exit_code == 0, ok.output
    assert read_manifest(out)["count"] == 4
    info = runner.invoke(main, ["dataset", "info", str(out)])
    assert "4 notes" in info.output and "instrument_family (11)" in info.output
    for args, message in ((["--programs", "0-200"], "program"), (["--pitches", "x"], "pitch"),
                          (["--soundfont", str(tmp_path / "none.sf2")], "not found")):
        bad = runner.invoke(main, ["dataset", "soundfont", str(tmp_path / "x"), "--preset", "tiny", *args])
        assert bad.exit_code == 1 and message in bad.output and "Traceback" not in bad.output
        assert not (tmp_path / "x").exists()
    (tmp_path / "fake.sf2").write_bytes(b"RIFF1234sfbk garbage")
    bad = runner.invoke(main, ["dataset", "soundfont", str(tmp_path / "x"), "--soundfont", str(tmp_path / "fake.sf2")])
    assert bad.exit_code == 1 and "SoundFont" in bad.output
    assert parse_int_list("0-3,7,2", 0, 127, "program") == [0, 1, 2, 3, 7]
    with pytest.raises(UserError):
        parse_int_list("5-1", 0, 127, "program")
