"""Process-level settings for running on a CPU."""

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
