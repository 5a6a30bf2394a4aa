"""Paths between latent vectors: slerp (GANSynth's choice for Gaussian latents) and lerp."""

from __future__ import annotations

import numpy as np


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation between vectors a and b (rows), falling back to lerp when nearly parallel."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.clip(np.sum(a * b, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    small = so < 1e-6
    so = np.where(small, 1.0, so)
    out = np.where(small, (1 - t) * a + t * b, (np.sin((1 - t) * omega) / so) * a + (np.sin(t * omega) / so) * b)
    return out.astype(np.float32)


def lerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)[..., None]
    return ((1 - t) * np.asarray(a, np.float64) + t * np.asarray(b, np.float64)).astype(np.float32)


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "slerp") -> np.ndarray:
    """`steps` points from a to b inclusive: `[steps, dim]`."""
    if steps < 2:
        raise ValueError("steps must be at least 2")
    ts = np.linspace(0.0, 1.0, steps)
    fn = {"slerp": slerp, "lerp": lerp}[method]
    return np.stack([fn(a, b, t) for t in ts])
