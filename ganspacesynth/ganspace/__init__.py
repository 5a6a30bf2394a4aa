"""GANSpace on GANSynth: principal directions of a layer's activations, and synthesis from their coefficients.

Modules: sampling (seeded latents, streamed activations), estimators (cov, ipca, pca, randomized, ica, spca),
regression (latent directions), fit (the pipeline), components (the file format and public container),
edits (`synthesize`), grid (2-D sweeps with a spectrogram figure); torchrun scale-out through
training/distributed.py.
See docs/ganspace.md.
"""
