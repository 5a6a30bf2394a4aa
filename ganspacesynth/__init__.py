"""GANSpaceSynth: GANSynth + GANSpace in PyTorch."""

import os as _os

# Same seed, same audio: MKL otherwise picks code paths at run time that round differently, and a batch of
# notes came out different in about one process in 15 (measured on the 2-core development VM). "AUTO,STRICT"
# keeps the fastest instruction set and makes results reproducible. It must be set before MKL starts, i.e.
# before torch is imported; a value the user set wins.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"

__all__ = ["__version__"]
