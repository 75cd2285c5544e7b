"""GPUs for local workers: which worker gets which GPU, and how its TensorFlow takes memory.

``--gpus 0,1 --trials-per-gpu K`` (or a repeated id, ``--gpus 0,0,1,1``) runs K workers per
GPU. Each worker's environment names its GPU (``CUDA_VISIBLE_DEVICES``), how many workers share
it (:data:`TRIALS_PER_GPU_ENV`, recorded with every trial) and how its trial processes allocate
memory: on demand (``TF_FORCE_GPU_ALLOW_GROWTH=true``) or capped at ``--gpu-memory-mb`` MiB
(:data:`GPU_MEMORY_ENV`, applied in the trial process as a logical device). Standard library
only: the launching process never imports TensorFlow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sweep.errors import UsageError

#: A trial process's GPU memory cap in MiB (``--gpu-memory-mb``); read by ``sweep.run._child``.
GPU_MEMORY_ENV = "SWEEP_GPU_MEMORY_MB"
#: How many workers share this worker's GPU; recorded as the trial attribute ``trials_per_gpu``.
TRIALS_PER_GPU_ENV = "SWEEP_TRIALS_PER_GPU"
#: TensorFlow's own switch for memory growth on every GPU.
ALLOW_GROWTH_ENV = "TF_FORCE_GPU_ALLOW_GROWTH"


def parse_gpus(text: str | None) -> tuple[str, ...]:
    """``"0,1"`` -> ``("0", "1")``; a repeated id (``"0,0,1"``) means several workers there.

    Raises:
        UsageError: anything but comma-separated non-negative integers.
    """
    if text is None:
        return ()
    ids = tuple(part.strip() for part in text.split(","))
    if not ids or not all(part.isdigit() for part in ids):
        raise UsageError(
            f"--gpus expects GPU indices like 0,1 (repeat an id for several workers on it), "
            f"got {text!r}"
        )
    return tuple(str(int(part)) for part in ids)


def check_gpu_options(gpus: Sequence[str], trials_per_gpu: int, gpu_memory_mb: int | None) -> None:
    """Refuse values that cannot work, before anything starts.

    Raises:
        UsageError: ``trials_per_gpu < 1``, ``gpu_memory_mb <= 0``, or either without ``gpus``.
    """
    if trials_per_gpu < 1:
        raise UsageError(f"--trials-per-gpu must be at least 1, got {trials_per_gpu}")
    if gpu_memory_mb is not None and gpu_memory_mb <= 0:
        raise UsageError(f"--gpu-memory-mb must be a positive number of MiB, got {gpu_memory_mb}")
    if not gpus and (trials_per_gpu != 1 or gpu_memory_mb is not None):
        raise UsageError("--trials-per-gpu and --gpu-memory-mb need --gpus")


def worker_environments(
    gpus: Sequence[str], trials_per_gpu: int = 1, gpu_memory_mb: int | None = None
) -> list[dict[str, str]]:
    """One environment per local GPU worker: each listed id ``trials_per_gpu`` times.

    Every worker on a GPU records the number of workers sharing it (a repeated id counts each
    time it is listed). Without ``gpu_memory_mb`` TensorFlow grows its memory on demand.

    Raises:
        UsageError: as :func:`check_gpu_options`.
    """
    check_gpu_options(gpus, trials_per_gpu, gpu_memory_mb)
    slots = [gpu for gpu in gpus for _ in range(trials_per_gpu)]
    sharing = Counter(slots)
    environments = []
    for gpu in slots:
        env = {"CUDA_VISIBLE_DEVICES": gpu, TRIALS_PER_GPU_ENV: str(sharing[gpu])}
        if gpu_memory_mb is not None:
            env[GPU_MEMORY_ENV] = str(gpu_memory_mb)
        else:
            env[ALLOW_GROWTH_ENV] = "true"
        environments.append(env)
    return environments
