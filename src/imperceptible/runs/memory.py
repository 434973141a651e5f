"""How many images fit in one batch: the default ``--batch-size`` (issue #34, item 6).

An attack's working memory per image is, to first order, what one gradient pass of the model keeps for its backward
(the activations autograd saves) times a small multiple: the attack holds a few image-sized buffers (its iterate, its
best so far, a cost's gradient) and, for ours and PerC-AL, a second graph through the perceptual cost.
:func:`saved_bytes_per_image` measures the first term on the run's own model and image size (one forward of one and of
two images, the difference: parameters that autograd saves count in both and cancel); :data:`ATTACK_MULTIPLE` is the
second, an upper bound over every attack that ``benchmarks/attack_memory.py`` measured (peak resident memory per
image against this estimate, 224x224, batch 8: docs/results.md, "Memory"). The batch is the largest that keeps the
estimate within :data:`MEMORY_SHARE` of the memory the device has free, capped at :data:`MAX_BATCH` for the device
and, on the CPU, at the working set of the earlier fixed default (:data:`CPU_BATCH_BYTES`: 8 images of 224x224 for
EfficientNet-Lite0, 256 digits for the MNIST CNNs, whose per-step work is too small to use the cores in batches of 8).

Examples:
    >>> from imperceptible.runs.memory import batch_that_fits
    >>> batch_that_fits(per_image=100 * 2**20, free=8 * 2**30, device="cpu")  # 100 MiB an image, 8 GiB free: the cap
    8
    >>> batch_that_fits(per_image=400_000, free=8 * 2**30, device="cpu")  # a digit of an MNIST CNN
    256
    >>> batch_that_fits(per_image=100 * 2**20, free=2**30, device="cpu")  # 1 GiB free: 1 GiB x 0.5 / 200 MiB
    2
    >>> batch_that_fits(per_image=100 * 2**20, free=2**20, device="cpu")  # never below one image
    1
"""

from __future__ import annotations

import os

import torch

#: peak memory per image of an attack over the bytes one gradient pass saves per image: the largest multiple
#: ``benchmarks/attack_memory.py`` measured over the attacks of the minimal benchmark (1.67, ALMA with its SSIM
#: distance; ours 1.42, with ColorVideoVDP as its cost 1.53; EfficientNet-Lite0 at 224x224), rounded up
ATTACK_MULTIPLE = 2.0
#: the share of the free memory a batch's estimate may take (the rest: the store, the judges, other processes)
MEMORY_SHARE = 0.5
#: the largest default batch per device type: 256 on the CPU, 64 on a GPU (not measured here: no GPU was lent)
MAX_BATCH = {"cpu": 256, "cuda": 64}
#: on the CPU a batch also keeps within the working set of the earlier fixed default, 8 EfficientNet-Lite0 images at
#: 224x224 (8 x 80.7 MiB by :func:`saved_bytes_per_image`): 8 images there, 256 for the MNIST CNNs (0.43 MB an image),
#: where a batch of 256 ran ours 1.6x faster than batches of 8 (256 digits, 50 passes, one thread: 10.5 s vs 17.1 s)
CPU_BATCH_BYTES = 8 * 84_622_380


def saved_bytes_per_image(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes that one forward pass of ``model`` saves for its backward, per image of ``x``'s size (the difference
    between a batch of two and a batch of one; the input gradient is asked for, as attacks ask for it)."""

    def saved(batch: torch.Tensor) -> int:
        total = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        xi = batch.detach().clone().requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(xi)
        return total + out.numel() * out.element_size() + xi.numel() * xi.element_size()

    one = x[:1]
    return max(saved(torch.cat([one, one])) - saved(one), 1)


def free_bytes(device: torch.device | str) -> int:
    """Memory the device has free: on a GPU what CUDA reports, on the CPU the kernel's ``MemAvailable`` (free pages and
    reclaimable caches; ``/proc/meminfo``), else the free physical pages."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def batch_that_fits(*, per_image: int, free: int, device: torch.device | str) -> int:
    """The largest batch whose estimate (``ATTACK_MULTIPLE x per_image`` bytes an image) stays within
    ``MEMORY_SHARE`` of ``free``, between 1 and the device's :data:`MAX_BATCH` (on the CPU also within
    :data:`CPU_BATCH_BYTES`, but not below 8 for that)."""
    kind = torch.device(device).type
    cap = MAX_BATCH.get(kind, MAX_BATCH["cpu"])
    if kind != "cuda":
        cap = max(8, min(cap, CPU_BATCH_BYTES // per_image))
    fits = int(free * MEMORY_SHARE // (ATTACK_MULTIPLE * per_image))
    return max(1, min(cap, fits))


def default_batch_size(model: torch.nn.Module, x: torch.Tensor, device: torch.device | str) -> int:
    """The default ``--batch-size`` for attacking images like ``x`` with ``model`` on ``device``
    (:func:`batch_that_fits` of :func:`saved_bytes_per_image` and :func:`free_bytes`)."""
    return batch_that_fits(per_image=saved_bytes_per_image(model, x.to(device)), free=free_bytes(device),
                           device=device)


__all__ = ["ATTACK_MULTIPLE", "CPU_BATCH_BYTES", "MAX_BATCH", "MEMORY_SHARE", "batch_that_fits", "default_batch_size",
           "free_bytes", "saved_bytes_per_image"]
