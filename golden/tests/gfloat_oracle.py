"""The gfloat description of the project's formats, shared by the oracle tests.

gfloat (Graphcore's reference float library) is the independent oracle the golden model is
checked against; this module is the one place that says how a :class:`FloatFormat` maps onto a
``gfloat.FormatInfo`` and the project's rounding names onto gfloat's modes.
"""

import gfloat

__all__ = ["GF_MODE", "gf_info"]

#: The project's rounding names -> gfloat rounding modes.
GF_MODE = {"rne": gfloat.RoundMode.TiesToEven, "rtz": gfloat.RoundMode.TowardZero}


def gf_info(fmt):
    """gfloat FormatInfo of an IEEE-style FloatFormat (subnormals, +-Inf, all high codes NaN)."""
    return gfloat.FormatInfo(fmt.name, fmt.width, fmt.precision, bias=fmt.bias, is_signed=True,
                             domain=gfloat.Domain.Extended, has_nz=True,
                             num_high_nans=(1 << fmt.man_bits) - 1, has_subnormals=True,
                             is_twos_complement=False)
