"""GANSpace on GANSynth: principal directions of a layer's activations, and synthesis from their coefficients.

Modules: sampling (seeded latents, streamed activations), protocol (what every estimator implements),
estimators (cov and the registry; sklearn_estimators: ipca, pca, randomized, ica, spca), sums (cov's float64
sums: NumPy on CPUs, torch on devices), eigen (the solver choice and the solvers), checkpoint (long fits),
regression (latent directions), centring (conditional means: noz's start, the fit's per-condition centring),
fit (the pipeline), components (the file format and public container), edits (`synthesize`), grid (2-D sweeps
with a spectrogram figure); torchrun scale-out through training/distributed.py.
See docs/ganspace.md.
"""
