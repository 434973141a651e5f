"""Input-transformation defenses: JPEG compression and bit-depth reduction (the paper's §3.3)."""

from .bit_depth import bit_depth_reduction
from .jpeg import jpeg_compression

__all__ = ["bit_depth_reduction", "jpeg_compression"]
