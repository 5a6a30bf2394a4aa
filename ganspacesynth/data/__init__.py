"""Datasets: chop/pad audio folders (folder.py), NSynth json/wav and TFRecords (nsynth.py, tfrecord.py),
SoundFont rendering (soundfont.py, gm.py), validation (validate.py), shards + manifest (shards.py, make.py)
and the loader (dataset.py). docs/datasets.md describes the commands and the on-disk format."""
