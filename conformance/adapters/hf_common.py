"""What the adapters of transformers' own TF and Flax ELECTRA classes share (the ``hf`` extra).

The framework adapters (hf_tf.HFTFAdapter, hf_flax.HFFlaxAdapter) add building, running, weights and
saving; this base answers the descriptive half of the protocol from transformers itself.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from conformance.adapters.common import PackageClasses, package_version, to_numpy


def check_state_dict(expected: Mapping[str, tuple], state: Mapping[str, np.ndarray], class_name: str) -> dict:
    """``state`` renamed to the expected canonical names; raises ValueError naming missing/unexpected
    names and KeyError-free shape mismatches (CheckpointShapeError) as electra_core.checkpoint does."""
    from electra_core.checkpoint import match_state

    result = match_state(expected, state)
    if result.missing or result.unexpected:
        raise ValueError(f"{class_name}: state dict does not match the model: missing {result.missing[:10]} "
                         f"({len(result.missing)}), unexpected {result.unexpected[:10]} ({len(result.unexpected)})")
    return result.state


class HFAdapterBase(PackageClasses):
    """Descriptive part of the protocol for transformers' classes; subclasses set ``name``/``framework``."""

    name = "hf"
    framework = "tf"
    package = "transformers"

    def _package_label(self) -> str:
        return f"transformers {package_version('transformers')}"

    def version(self) -> str:
        return self._package_label()

    def call_native(self, handle, arguments: Mapping[str, Any]) -> Any:
        """Optional protocol method (base.py): the model called with exactly ``arguments``
        (OWN_PARAMETERS: the Flax model's own ``params``)."""
        from conformance.adapters.base import OWN_PARAMETERS

        model = handle.native
        values = {k: (model.params if isinstance(v, str) and v == OWN_PARAMETERS else v) for k, v in arguments.items()}
        with self._device(handle.device):
            return model(**values)

    def hf_config(self, config: Mapping[str, Any]):
        from transformers import ElectraConfig

        return ElectraConfig.from_dict(dict(config))

    def expected_shapes(self, handle) -> dict[str, tuple]:
        return {n: tuple(np.shape(v)) for n, v in self.get_weights(handle).items()}

    def get_weights(self, handle) -> dict[str, np.ndarray]:  # pragma: no cover - subclasses
        raise NotImplementedError

    def run_result(self, output: Any, tuple_output: Any = None):
        """A RunResult from transformers' ModelOutput (and the return_dict=False tuple)."""
        from conformance.adapters.base import RunResult

        fields = {k: to_numpy(v) for k, v in output.items() if v is not None}
        return RunResult(fields=fields, tuple_form=to_numpy(tuple_output) if tuple_output is not None else None,
                         output_class=type(output).__name__)
