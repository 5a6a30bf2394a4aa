"""Bundled package data: the default model and its GANSpace components, when installed."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
DEFAULT_MODEL = ASSETS / "default_model.safetensors"
DEFAULT_COMPONENTS = ASSETS / "default_components.npz"


def default_model_path() -> Path | None:
    return DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None


def default_components_path() -> Path | None:
    return DEFAULT_COMPONENTS if DEFAULT_COMPONENTS.is_file() else None
