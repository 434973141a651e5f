"""Judges built on models of human vision: ColorVideoVDP, FLIP, SSIMULACRA2 and butteraugli, each through its
authors' own code, each a lower-is-better distance per sample (0 for identical images).

Where the structural indices (SSIM, FSIM, ...) and the deep-feature distances (LPIPS, DISTS) score how much an image
changed, these four model the visual system (contrast sensitivity, masking, colour opponency, viewing distance) and
are calibrated on people's judgements, so each comes with a documented point below which a difference is not seen
(the thresholds and their quoted sources are in :mod:`.metrics`; :mod:`imperceptible.evaluate.visibility` counts the
images under them). No attack optimises them.

- ``cvvdp``: ColorVideoVDP (PyPI ``cvvdp`` 0.5.7, module ``pycvvdp``), ``10 - JOD`` on its ``standard_fhd`` display
  model, the package's model pooled in float64 without cancellation (:func:`cvvdp_metric`; the package's own float32
  output reads exactly 0 for the smallest changes);
- ``flip``: NVIDIA's FLIP (PyPI ``flip-evaluator`` 1.7), the mean LDR-FLIP error in ``[0, 1]`` at its default 67
  pixels per degree;
- ``ssimulacra2``: SSIMULACRA2 (PyPI ``ssimulacra2`` 0.3.0, numpy and scipy), ``100 - SSIMULACRA2`` (0 identical;
  its "visually lossless" 90 is 10);
- ``butteraugli``: libjxl's ``butteraugli_main`` (Debian ``libjxl-devtools``), the max-norm distance it prints first
  (intensity target 80 nits, its default).

The three PyPI packages install with the extra ``vision`` (``pip install -e '.[vision]'``).

Inputs are ``[0, 1]`` images as every cost takes; a grey image is repeated to RGB (:func:`~.base.to_rgb`), as the
other colour judges do. ColorVideoVDP and FLIP take the float values (on the 8-bit grid they are exactly what a PNG
of the image decodes to); SSIMULACRA2 and butteraugli read 8-bit PNG files, written losslessly from the image
(values off the 8-bit grid are rounded to it, with a warning). Only ColorVideoVDP is differentiable.

A package that is missing raises :class:`~imperceptible.errors.OptionalPackageError` naming the extra when the cost
is built, so :class:`~.distances.DistanceMeter` lists the judge under ``unavailable`` with that one line;
:func:`missing` says the same without building it.

References: R. K. Mantiuk, P. Hanji, M. Ashraf, Y. Asano, A. Chapiro, "ColorVideoVDP: a visual difference predictor
for image, video and display distortions", ACM TOG 43(4), SIGGRAPH 2024 (DOI 10.1145/3658144); P. Andersson,
J. Nilsson, T. Akenine-Moller, M. Oskarsson, K. Astrom, M. D. Fairchild, "FLIP: a difference evaluator for
alternating images", Proc. ACM Comput. Graph. Interact. Tech. 3(2), HPG 2020 (DOI 10.1145/3406183); J. Sneyers,
SSIMULACRA 2 (https://github.com/cloudinary/ssimulacra2, also libjxl tools/ssimulacra2; the Python port
https://github.com/Pacidus/py-ssimulacra2); J. Alakuijala et al., butteraugli (https://github.com/google/butteraugli;
libjxl lib/jxl/butteraugli and tools/butteraugli_main.cc).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

from ..errors import (
    MSG_VISION_PACKAGE,
    MSG_VISION_PROGRAM,
    MSG_VISION_PROGRAM_FAILED,
    MSG_VISION_PROGRAM_OUTPUT,
    MSG_VISION_TOO_SMALL,
    ExternalProgramError,
    OptionalPackageError,
    ParameterError,
)
from ..notices import MSG_VISION_ROUNDED, warn
from ..pixels import LEVELS, off_grid
from ..validation import check_choice
from .base import Cost, to_rgb
from .tags import CostTags

#: the pip extra that installs the Python judges (pyproject.toml pins the versions tested)
EXTRA = "vision"
#: cost name -> (import name, PyPI package)
PACKAGES = {
    "cvvdp": ("pycvvdp", "cvvdp"),
    "flip": ("flip_evaluator", "flip-evaluator"),
    "ssimulacra2": ("ssimulacra2", "ssimulacra2"),
}
#: butteraugli's command-line tool (Debian's libjxl-devtools), looked up on PATH
BUTTERAUGLI_PROGRAM = "butteraugli_main"
#: ColorVideoVDP's display model (see :class:`CVVDPCost` for why this one)
CVVDP_DISPLAY = "standard_fhd"
#: the smallest side SSIMULACRA2 and butteraugli score: below 8 pixels the Python SSIMULACRA2 computes no scale and
#: returns 100, and libjxl's butteraugli returns 0 (both "identical", whatever the images), so they are refused
MIN_SIZE = 8
#: how many characters of a failing program's stderr an error quotes
_TAIL = 300


def _present(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (``sys.modules[module] = None`` reads as absent)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _import(name: str):
    """The package of judge ``name``, or :class:`OptionalPackageError` naming the extra."""
    module, package = PACKAGES[name]
    # cvvdp imports torch.utils.benchmark, whose cpp_extension logs "No CUDA runtime is found" on every CPU-only
    # machine: a warning about nothing this tool uses, printed on every run; silenced for the import
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return importlib.import_module(module)
    except ImportError as e:
        got = "none installed" if (getattr(e, "name", None) or module).split(".")[0] == module else f"an import error ({e})"
        raise OptionalPackageError.of(MSG_VISION_PACKAGE, name=name, package=package, got=got, extra=EXTRA) from None
    finally:
        quiet.setLevel(level)


def _program() -> str:
    path = shutil.which(BUTTERAUGLI_PROGRAM)
    if path is None:
        raise OptionalPackageError.of(MSG_VISION_PROGRAM, name="butteraugli", program=BUTTERAUGLI_PROGRAM,
                                      got="none on PATH")
    return path


def missing(name: str) -> str | None:
    """Why judge ``name`` cannot be built here (the one-line message the cost would raise), or ``None``.

    Examples:
        >>> from imperceptible.costs.vision import missing
        >>> missing("l2") is None  # not a judge of this module: nothing is missing
        True
    """
    if name == "butteraugli":
        return None if shutil.which(BUTTERAUGLI_PROGRAM) else MSG_VISION_PROGRAM.format(
            name=name, program=BUTTERAUGLI_PROGRAM, got="none on PATH")
    if name not in PACKAGES:
        return None
    module, package = PACKAGES[name]
    return None if _present(module) else MSG_VISION_PACKAGE.format(name=name, package=package, got="none installed",
                                                                  extra=EXTRA)


class _VisionJudge(Cost):
    """Shared by the four judges: grey to RGB, the smallest size, 8-bit arrays for the judges that read files (whether a
    judge's value has a gradient in ``x`` is its tags' ``differentiable``: only ColorVideoVDP's)."""

    min_size: int = 1
    why_min: str = ""

    @classmethod
    def missing(cls) -> str | None:
        return missing(cls.name)

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            raise ParameterError.of(MSG_VISION_TOO_SMALL, name=self.name, expected=self.min_size, why=self.why_min,
                                    h=h, w=w)
        x, x0 = to_rgb(x), to_rgb(x0)
        if self.TAGS.differentiable:
            return self.score(x, x0)
        with torch.no_grad():
            out = self.score(x.detach(), x0.detach())
        return torch.as_tensor(out, dtype=x.dtype if x.is_floating_point() else torch.float32, device=x.device)

    def score(self, x: torch.Tensor, x0: torch.Tensor):  # pragma: no cover
        raise NotImplementedError

    def _uint8(self, x: torch.Tensor) -> np.ndarray:
        """``(N, 3, H, W)`` in ``[0, 1]`` -> ``(N, H, W, 3)`` uint8, the content of the image's PNG file."""
        count = off_grid(x)
        if count:
            warn(MSG_VISION_ROUNDED, name=self.name, count=count)
        # the clamp only keeps the cast exact: the values are in [0, 1] (forward checked them)
        levels = (x * (LEVELS - 1)).round().clamp(0, LEVELS - 1)
        return levels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


#: ColorVideoVDP metric objects, one per (display, device): building one loads its CSF tables and parameters, and
#: it keeps the Laplacian pyramid of the last image size
_CVVDP_METRICS: dict[tuple[str, str, bool], object] = {}


#: the regulariser of the package's ``safe_pow`` (``(x + eps) ** p - eps ** p``; pycvvdp 0.5.7 ``cvvdp_metric.py``), a
#: float32 tensor there: 1e-5 rounded to float32
CVVDP_EPS = float(np.float32(1e-5))


def stable_safe_pow(x: torch.Tensor, p: torch.Tensor | float, eps: float = CVVDP_EPS) -> torch.Tensor:
    """The package's ``safe_pow(x, p) = (x + eps) ** p - eps ** p``, computed as ``eps ** p * expm1(p * log1p(x / eps))``:
    the same function without the cancellation of two nearly equal powers, so that it is positive for every ``x > 0``
    (the package's form returns exactly 0 once ``x`` falls below ``eps`` times the float's resolution).

    Examples:
        >>> import numpy as np, torch
        >>> from imperceptible.costs.vision import stable_safe_pow
        >>> x = torch.tensor([0.0, 1e-30, 0.5], dtype=torch.float64)
        >>> stable_safe_pow(x, 0.25)[0].item(), stable_safe_pow(x, 0.25)[1].item() > 0
        (0.0, True)
        >>> e = float(np.float32(1e-5)); abs(stable_safe_pow(x, 0.25)[2].item() - ((0.5 + e) ** 0.25 - e ** 0.25)) < 1e-15
        True
    """
    p = torch.as_tensor(p, dtype=x.dtype, device=x.device)
    return eps ** p * torch.expm1(p * torch.log1p(x / eps))


def _deficit_metric(pycvvdp):
    """``pycvvdp.cvvdp`` whose prediction is the JOD deficit ``10 - JOD``, pooled in float64 without cancellation.

    The package maps its pooled difference ``Q`` to ``JOD = 10 - a Q`` (``met2jod``) in float32, and pools with
    ``safe_pow``; both lose a small ``Q``: ``10 - JOD`` is resolved to about 1e-6, and the pooling's
    ``(s + eps) ** (1/4) - eps ** (1/4)`` returns 0 once the summed fourth powers ``s`` fall below about 1e-12 (one grey
    level of noise on a textured photo). Here the per-channel, per-band differences (the package's own ``Q_per_ch``,
    with its gradient) are pooled as the package pools them (:meth:`do_pooling_and_jods`, the same weights and
    exponents), in float64 with :func:`stable_safe_pow`, and mapped to the deficit ``a Q`` directly; the spatial pooling
    of each band (the same ``lp_norm``) uses :func:`stable_safe_pow` too. Where the
    package's float32 output resolves the difference, the two agree to its resolution (the tests check it on photos).
    """

    class DeficitCVVDP(pycvvdp.cvvdp):
        """``predict`` (and ``loss``) return the deficit ``10 - JOD``; ``met2jod`` keeps the package's meaning (JOD)
        everywhere but inside :meth:`do_pooling_and_jods`, so the package's heatmap and distogram stay as they were."""

        _pooling = False

        def lp_norm(self, x, p, dim=0, normalize=True, keepdim=True):
            n = float(math.prod(x.shape[d] for d in (dim if isinstance(dim, tuple) else (dim,)))) if normalize else 1.0
            return stable_safe_pow(torch.sum(stable_safe_pow(x, p), dim=dim, keepdim=keepdim) / n, 1 / p)

        def do_pooling_and_jods(self, Q_per_ch):
            self._pooling = True
            try:
                return super().do_pooling_and_jods(Q_per_ch.double())
            finally:
                self._pooling = False

        def met2jod(self, Q):
            if not self._pooling:
                return super().met2jod(Q)
            q_t = 0.1  # the package's knee: linear below it, the power law above (met2jod)
            a, e = self.jod_a.double(), self.jod_exp.double()
            return torch.where(Q <= q_t, a * q_t ** (e - 1.0) * Q, a * Q.clamp_min(q_t) ** e)

        def loss(self, test_cont, reference_cont, dim_order="BCFHW", frames_per_second=0):
            return self.predict(test_cont, reference_cont, dim_order=dim_order, frames_per_second=frames_per_second)[0]

    return DeficitCVVDP


def cvvdp_metric(display: str = CVVDP_DISPLAY, device: torch.device | str = "cpu", *, deficit: bool = True):
    """ColorVideoVDP for ``display`` on ``device``, built once and kept: with ``deficit`` (the judge's form) its
    ``predict`` returns ``10 - JOD`` pooled without cancellation (:func:`_deficit_metric`), else it is the package's
    own ``pycvvdp.cvvdp`` (``predict`` returns JOD)."""
    key = (display, str(torch.device(device)), deficit)
    if key not in _CVVDP_METRICS:
        pycvvdp = _import("cvvdp")
        cls = _deficit_metric(pycvvdp) if deficit else pycvvdp.cvvdp
        _CVVDP_METRICS[key] = cls(display_name=display, device=torch.device(device), quiet=True)
    return _CVVDP_METRICS[key]


def cvvdp_displays() -> list[str]:
    """The display models ColorVideoVDP's installed configuration defines (``display_models.json``)."""
    utils = importlib.import_module("pycvvdp.utils")
    return list(utils.json2dict(utils.config_files.find("display_models.json", [])))


class CVVDPCost(_VisionJudge):
    """ColorVideoVDP as a distance: ``10 - JOD`` per sample (the package's ``cvvdp.loss`` without its float32
    cancellation), differentiable in ``x``.

    ``display`` is the package's display model (default ``standard_fhd``: "24-inch FullHD monitor, peak luminance
    200 cd/m^2, viewed under office light levels (250 lux), seen from 2 x display height", 0.6 m, 37.8 pixels per
    degree; ``display_models.json`` in the wheel). Why this one and not the package's default ``standard_4k`` (a
    30-inch 4K monitor at 0.75 m, 75 pixels per degree): the images this tool attacks (224-pixel ImageNet crops,
    28-pixel digits) are looked at on an ordinary desktop monitor at 1:1, the model the package's README uses in
    its own examples (``--display standard_fhd``); and on the 4K model, where a pixel subtends half the angle,
    differences of our sizes nearly vanish: +-1 grey level of sign noise on four ImageNet photos (``imagenet-samples``
    0-3, 224x224) scores 1e-5 to 6e-4 JOD below 10 there (10 to 600 float32 steps of the package's output) against
    0.005 to 0.014 on ``standard_fhd``; 2, 4, 8 levels score 0.03-0.07, 0.14-0.28, 0.48-0.87 on ``standard_fhd``.

    The value is the package's model, pooled without cancellation (:func:`_deficit_metric`): the package itself
    returns ``JOD = 10 - a Q`` in float32, so ``10 - JOD`` is resolved to about 1e-6 JOD, and its pooling returns
    exactly 0 for changes a little below that (one grey level at one pixel; 12 of 17 of ours' fooled photos in a
    50-pass run): a judge that reads 0 on a changed image ties every such change and cannot order them. Where the
    package resolves the change the two agree to 2e-6 (tested on photos). Inputs are sRGB display-encoded ``[0, 1]``
    values (the display model's EOTF); the metric object is built once per device (:func:`cvvdp_metric`) and images go
    through it as one batch (the package's batch mode; the test checks it equals one by one).
    """

    name = "cvvdp"
    TAGS = CostTags(
        '10 - JOD of ColorVideoVDP (Mantiuk et al. 2024), display standard_fhd (cvvdp; extra vision; a '
        'judge)',
        symmetric=False, needs=("vision",))

    def __init__(self, *, display: str = CVVDP_DISPLAY, data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        _import("cvvdp")
        self.display = check_choice("display", display, cvvdp_displays())

    def score(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        metric = cvvdp_metric(self.display, x.device)
        deficit, _ = metric.predict(x.float(), x0.float(), dim_order="BCHW")
        return deficit.reshape(-1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"display={self.display!r}, " + super().extra_repr()


class FLIPCost(_VisionJudge):
    """NVIDIA's FLIP (LDR-FLIP) as a distance: the mean of its per-pixel error map, per sample, in ``[0, 1]``.

    FLIP models a person flipping between the two images (the flicker test of a difference): colour differences in
    a perceptually uniform space after contrast-sensitivity filtering, plus feature (edge and point) differences.
    Viewing condition: the package's default, 67 pixels per degree (``parameters={}``; its authors' setting: a
    0.7 m-wide 3840-pixel monitor seen from 0.7 m). Inputs are sRGB (``inputsRGB=True``, the package's default for
    LDR). The package takes one pair at a time; each goes through ``flip_evaluator.evaluate``.
    """

    name = "flip"
    TAGS = CostTags(
        'mean LDR-FLIP error (Andersson et al. 2020), 67 pixels per degree (flip-evaluator; extra '
        'vision; a judge)',
        symmetric=False, differentiable=False, needs=("vision",))

    def __init__(self, *, data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        self._flip = _import("flip")

    def score(self, x: torch.Tensor, x0: torch.Tensor) -> list[float]:
        test = x.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()
        ref = x0.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return [float(self._flip.evaluate(r, t, "LDR", applyMagma=False)[1]) for r, t in zip(ref, test)]


class SSIMULACRA2Cost(_VisionJudge):
    """``100 - SSIMULACRA2`` per sample (0 for identical images; 10 is its "visually lossless" 90).

    SSIMULACRA2 compares the images in the XYB colour space of JPEG XL (an LMS-like opponent space with a cube-root
    response) at six scales, with SSIM-like and edge (ringing, blur) error maps pooled by 1- and 4-norms and a
    mapping fitted to subjective scores. Viewing condition: the metric's own, images compared at 1:1 (no display
    model). The image pair is written as 8-bit PNGs in memory and scored by the package's
    ``ssimulacra2.compute_ssimulacra2``, one pair at a time (the package reads files).
    """

    name = "ssimulacra2"
    TAGS = CostTags(
        "100 - SSIMULACRA2 (Sneyers; JPEG XL's metric) (ssimulacra2; extra vision; a judge)", symmetric=False,
        differentiable=False, needs=("vision",))
    min_size = MIN_SIZE
    why_min = "SSIMULACRA2's smallest scale; smaller images score 100 whatever they hold"

    def __init__(self, *, data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        self._lib = _import("ssimulacra2")

    def score(self, x: torch.Tensor, x0: torch.Tensor) -> list[float]:
        from PIL import Image

        def png(a: np.ndarray) -> io.BytesIO:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG")
            buf.seek(0)
            return buf

        return [100.0 - float(self._lib.compute_ssimulacra2(png(r), png(t)))
                for r, t in zip(self._uint8(x0), self._uint8(x))]


class ButteraugliCost(_VisionJudge):
    """The butteraugli distance per sample: the max-norm score of libjxl's ``butteraugli_main`` (Debian's
    ``libjxl-devtools``).

    butteraugli models the eye's opsin dynamics, an opponent XYB space, the low density of blue cones in the fovea
    and frequency-band masking, and is tuned "in the domain of barely noticeable differences" (its README). The tool
    prints two numbers: the max-norm distance (the worst local difference, the one libjxl's encoder targets with its
    ``--distance``, where 1.0 is "visually lossless") and a 3-norm over the image; this cost reports the first,
    whose threshold the authors state. Viewing condition: the tool's defaults, the images read as sRGB PNGs shown at
    an intensity target of 80 nits. Each pair is written as lossless 8-bit PNGs to a temporary folder and scored by
    one run of the program.
    """

    name = "butteraugli"
    TAGS = CostTags(
        "butteraugli max-norm distance (Alakuijala et al.) (libjxl's butteraugli_main, Debian libjxl-devtools; a "
        "judge)", symmetric=False, differentiable=False, needs=("libjxl-devtools",))
    min_size = MIN_SIZE
    why_min = "libjxl's butteraugli returns 0 for smaller images whatever they hold"

    def __init__(self, *, data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        self._program = _program()

    def score(self, x: torch.Tensor, x0: torch.Tensor) -> list[float]:
        from PIL import Image

        out = []
        with tempfile.TemporaryDirectory(prefix="imperceptible-butteraugli-") as tmp:
            for i, (r, t) in enumerate(zip(self._uint8(x0), self._uint8(x))):
                ref, test = os.path.join(tmp, f"{i}-ref.png"), os.path.join(tmp, f"{i}-test.png")
                Image.fromarray(r).save(ref, format="PNG")
                Image.fromarray(t).save(test, format="PNG")
                out.append(self._run(ref, test, i))
        return out

    def _run(self, ref: str, test: str, index: int) -> float:
        res = subprocess.run([self._program, ref, test], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ExternalProgramError.of(MSG_VISION_PROGRAM_FAILED, name=self.name, program=BUTTERAUGLI_PROGRAM,
                                          index=index, code=res.returncode, tail=res.stderr.strip()[-_TAIL:])
        return parse_butteraugli(res.stdout)


def parse_butteraugli(stdout: str) -> float:
    """The max-norm score ``butteraugli_main`` prints on its first line (the second holds ``3-norm: ...``).

    Examples:
        >>> parse_butteraugli("0.9070966840\\n3-norm: 0.401114\\n")
        0.907096684
    """
    first = stdout.strip().splitlines()[0] if stdout.strip() else ""
    try:
        value = float(first)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ExternalProgramError.of(MSG_VISION_PROGRAM_OUTPUT, name="butteraugli", program=BUTTERAUGLI_PROGRAM,
                                      got=stdout[:_TAIL])
    return value


#: the judges of this module, by cost name
JUDGES = {c.name: c for c in (CVVDPCost, FLIPCost, SSIMULACRA2Cost, ButteraugliCost)}

__all__ = ["BUTTERAUGLI_PROGRAM", "ButteraugliCost", "CVVDPCost", "CVVDP_DISPLAY", "EXTRA", "FLIPCost", "JUDGES",
           "MIN_SIZE", "PACKAGES", "SSIMULACRA2Cost", "cvvdp_displays", "cvvdp_metric", "missing", "parse_butteraugli"]
