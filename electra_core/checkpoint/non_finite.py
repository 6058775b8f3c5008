"""files.load.non_finite: loaded parameters holding NaN or infinite values are named in a warning."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from electra_core.checkpoint.errors import NonFiniteWeightsWarning

logger = logging.getLogger("electra_core.checkpoint")

#: parameters listed by name in the warning; the rest are counted
SHOWN = 20


def non_finite_counts(state: Mapping[str, np.ndarray]) -> dict[str, tuple[int, int]]:
    """{name: (NaN count, inf count)} of the float parameters that hold any NaN or inf."""
    found = {}
    for name, value in state.items():
        array = np.asarray(value)
        if array.dtype.kind not in "fc" and array.dtype.name != "bfloat16":
            continue
        finite = np.isfinite(array)
        if not finite.all():
            nan = int(np.isnan(array).sum())
            found[name] = (nan, int(array.size - finite.sum()) - nan)
    return found


def warn_non_finite(state: Mapping[str, np.ndarray], path: Path) -> None:
    """Warn (NonFiniteWeightsWarning, naming ``path`` and each parameter) when any parameter is not finite."""
    found = non_finite_counts(state)
    if not found:
        return
    names = sorted(found)
    listed = ", ".join(f"{n} ({found[n][0]} NaN, {found[n][1]} inf)" for n in names[:SHOWN])
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    message = (f"{path}: {len(names)} parameter(s) hold NaN or infinite values: {listed}{more}; the model's "
               f"outputs will not be finite (warnings.simplefilter('error', NonFiniteWeightsWarning) refuses such files)")
    logger.info(message)
    warnings.warn(message, NonFiniteWeightsWarning, stacklevel=2)
