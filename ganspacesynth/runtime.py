"""Process-level settings for running on a CPU, and the one precision choice (`resolve_precision`) that
generation (Synth) and training share."""

from __future__ import annotations

import os

_heap_threshold = 0


def keep_allocations_in_heap(nbytes: int) -> None:
    """Let glibc serve allocations up to `nbytes` from its heap instead of fresh mmap()s.

    glibc maps every block above its mmap threshold (at most 32 MB) freshly and unmaps it on free, so every
    large tensor page-faults all of its memory each time it is allocated: a float32 batch of 32 GANSynth
    spectrograms (33.5 MB) made the loader fall from ~3,500 to ~1,200 spectrograms/s, and a final-stage CPU
    training step spent 41 of its 78 CPU seconds in the kernel (20.3 s/step; 15.3 s with the threshold
    raised). Raising the threshold (and the trim threshold, so freed blocks stay mapped) lets each new
    tensor reuse the last one's pages. Process-wide, only ever raised, and a no-op off glibc.
    """
    global _heap_threshold
    if nbytes <= max(_heap_threshold, 32 << 20):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        if libc.mallopt(m_mmap_threshold, int(nbytes)) and libc.mallopt(m_trim_threshold, int(2 * nbytes)):
            _heap_threshold = int(nbytes)
    except (OSError, AttributeError):
        pass


def keep_training_allocations_in_heap(config, batch_size: int) -> None:
    """`keep_allocations_in_heap` sized for a CPU training step: activations, their gradients and the
    convolutions' temporaries (measured, mel_prog_hires final stage, batch 8, bf16, 2 threads: 20.3 s per step
    as glibc has it, 18.5 s with 2× the largest activation, 13.4 s with 8×)."""
    keep_allocations_in_heap(8 * 4 * int(batch_size) * config.largest_activation())  # float32 values


def keep_generation_allocations_in_heap(config, notes_per_pass: int, up_to_block: int | None = None) -> None:
    """`keep_allocations_in_heap` sized for CPU generation: a layer's input, output and the Winograd convs'
    tile buffers (mel_prog_hires, 2 threads, generator alone, paired runs: 0.122 / 0.113 / 0.124 s per note as
    glibc has it, 0.101 / 0.107 / 0.121 s with 4× the largest activation)."""
    keep_allocations_in_heap(4 * 4 * int(notes_per_pass) * config.largest_activation(up_to_block))  # float32 values


# -- the CPU's abilities -------------------------------------------------------------------------------
#: /proc/cpuinfo flags that mean bfloat16 matrix arithmetic runs natively (AMX tiles, or AVX-512 BF16 dot
#: products). Without them oneDNN emulates bfloat16 through float32 conversions: measured several times
#: slower than float32 on an Ice Lake (AVX-512, no BF16) for generation and training alike.
BF16_NATIVE_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of this machine's first CPU (empty where /proc/cpuinfo is not readable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name (for logs and benchmark records), e.g. 'Intel(R) Xeon(R) Platinum 8480+'."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_bfloat16_native(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU computes bfloat16 natively (AMX or AVX512-BF16), so bfloat16 beats float32."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_NATIVE_FLAGS)


#: Environment variable that fixes what `--precision auto` means on this machine (float32 or bfloat16), e.g. so
#: that a test suite compares the same arithmetic on every CPU (tests/conftest.py sets it to float32).
AUTO_PRECISION_ENV = "GANSPACESYNTH_AUTO_PRECISION"


def auto_precision(device_type: str, flags: frozenset[str] | None = None) -> str:
    """`--precision auto`: bfloat16 on CUDA and on CPUs with native bfloat16, float32 elsewhere; on this machine
    (`flags` None) $GANSPACESYNTH_AUTO_PRECISION, when set to float32 or bfloat16, decides instead."""
    forced = os.environ.get(AUTO_PRECISION_ENV, "").strip().lower()
    if flags is None and forced in ("float32", "bfloat16"):
        return forced
    if device_type == "cuda":
        return "bfloat16"
    if device_type == "cpu" and cpu_bfloat16_native(flags):
        return "bfloat16"
    return "float32"


def bfloat16_warning(device_type: str, flags: frozenset[str] | None = None) -> str | None:
    """A one-line warning when bfloat16 was asked for on a CPU that emulates it (None when it is native)."""
    if device_type != "cpu" or cpu_bfloat16_native(flags):
        return None
    return (f"warning: this CPU ({cpu_model()}) has no native bfloat16 (no AMX or AVX512-BF16): bfloat16 is emulated "
            f"and several times slower than float32 here; --precision auto chooses float32")


#: CPU flags under which oneDNN runs bfloat16 (transposed) convolutions at all: without one of these sets,
#: PyTorch stops with "mkldnn_convolution_transpose: bf16 path needs the cpu support avx_ne_convert or avx512bw,
#: avx512vl and avx512dq" (measured on an AMD EPYC with AVX2 only).
BF16_CONV_FLAG_SETS = (frozenset({"avx512bw", "avx512vl", "avx512dq"}), frozenset({"avx_ne_convert"}))


def cpu_runs_bfloat16(flags: frozenset[str] | None = None) -> bool:
    """Whether PyTorch can run the generator in bfloat16 on this CPU at all (unknown flags: assume it can)."""
    flags = cpu_flags() if flags is None else flags
    return not flags or any(needed <= flags for needed in BF16_CONV_FLAG_SETS)


_precision_warned: set[str] = set()


def resolve_precision(precision: str, device_type: str, *, warn: bool = True) -> str:
    """The precision to compute in, for generation and training alike: `auto` → `auto_precision`; an explicit
    name of choices.PRECISIONS is kept, except bfloat16 on a CPU that cannot run bfloat16 convolutions (a
    one-line UserError). Explicit bfloat16 on a CPU that emulates it prints a one-line warning on stderr, once
    per process and device type (`warn=False`: not at all, e.g. training's other ranks)."""
    from .choices import PRECISIONS
    from .errors import UserError

    if precision == "auto":
        return auto_precision(device_type)
    if precision not in PRECISIONS:
        raise UserError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {str(precision)[:40]!r}")
    if precision == "bfloat16" and device_type == "cpu" and not cpu_runs_bfloat16():
        raise UserError(f"this CPU ({cpu_model()}) cannot run bfloat16 convolutions (PyTorch needs AVX-512 BW/VL/DQ "
                        f"or AVX-NE-CONVERT); use --precision float32 (or auto)")
    if precision == "bfloat16" and warn and device_type not in _precision_warned:
        warning = bfloat16_warning(device_type)
        if warning:
            import sys

            _precision_warned.add(device_type)
            print(warning, file=sys.stderr, flush=True)
    return precision
