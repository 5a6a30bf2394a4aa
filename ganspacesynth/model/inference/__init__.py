"""Fast generation on top of the reference network (model/layers.py, model/generator.py).

`prepare(generator, impl="fast" | "reference")` returns what to run for generation; the fast routes (cached
kernels, in-place activations, oneDNN fusion, Winograd, compiled C kernels, the last pixel norm folded into
to_rgb) are chosen per layer when it is called. This package imports the reference modules, never the reverse.
"""

from .generator import IMPLS, FastGenerator, FastOptions, prepare

__all__ = ["IMPLS", "FastGenerator", "FastOptions", "prepare"]
