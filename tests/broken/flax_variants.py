"""Broken variants of impl_flax for the suite's self-test (tests/test_suite_selftest.py); the patch
is applied when the adapter is created and undone by tests.broken.patching.undo_all.

Shape keys: B batch, S sequence.
"""
from __future__ import annotations

import numpy as np

from conformance.adapters.ours_flax import FlaxAdapter
from tests.broken.patching import patch


class _Broken(FlaxAdapter):
    defect = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = f"flax-broken-{self.defect}"
        self.apply()

    def apply(self) -> None:
        raise NotImplementedError


def _edit_prepared_inputs(change) -> None:
    """Patch the call-input preparation so that ``change(given, prepared)`` edits its result;
    ``given`` holds the arguments as the caller passed them."""
    from impl_flax import validation

    original = validation.prepare_call_inputs

    def prepare(config, **given):
        prepared = original(config, **given)
        change(given, prepared)
        return prepared

    patch(validation, "prepare_call_inputs", prepare)


class TanhGelu(_Broken):
    """gelu computed with the tanh approximation although the spec says exact (erf)."""
    defect = "tanh-gelu"

    def apply(self):
        from impl_flax.modeling import layers

        patch(layers, "ACTIVATIONS", dict(layers.ACTIVATIONS, gelu=layers._tanh_gelu))


class TokenTypesDefaultOnes(_Broken):
    """An omitted token_type_ids means all ones (sentence B) instead of zeros."""
    defect = "token-types-default-ones"

    def apply(self):
        def change(given, prepared):
            if given.get("token_type_ids") is None:
                prepared["token_type_ids"] = np.ones(np.shape(given["input_ids"]), np.int32)

        _edit_prepared_inputs(change)


class PaddingMaskIgnored(_Broken):
    """attention_mask is accepted but every position attends."""
    defect = "padding-mask-ignored"

    def apply(self):
        def change(given, prepared):
            prepared["attention_mask"] = None  # the in-trace default: all ones

        _edit_prepared_inputs(change)


class PerHeadMaskFirstLayerOnly(_Broken):
    """A head mask of shape (N,) reaches the first layer only (the others keep every head), as when it is
    written into row 0 of an (L, N) array of ones: visible only with a per-head mask and two layers."""
    defect = "per-head-mask-first-layer-only"

    def apply(self):
        def change(given, prepared):
            mask = given.get("head_mask")
            if mask is not None and np.ndim(mask) == 1 and prepared["head_mask"] is not None:
                rows = np.ones(np.shape(prepared["head_mask"]), np.float32)
                rows[0] = np.asarray(mask, np.float32)
                prepared["head_mask"] = rows

        _edit_prepared_inputs(change)


class HalfCheckpointKept(_Broken):
    """from_pretrained keeps a float16 file's dtype instead of loading float32 weights (the defect
    test_half_precision_checkpoint_loads_as_float32 found in impl_flax)."""

    defect = "half-checkpoint-kept"

    def apply(self) -> None:
        from impl_flax import checkpoint

        original = checkpoint.pt_to_flax

        def keep_half(state):
            return original({k: np.asarray(v, np.float16) if np.asarray(v).dtype == np.float32 else v
                             for k, v in state.items()})

        patch(checkpoint, "pt_to_flax", keep_half)


class IdsAtVocabSizeAccepted(_Broken):
    """The range check of input_ids is off by one at the top: an id equal to vocab_size is accepted
    (and then indexes past the embedding table)."""
    defect = "ids-at-vocab-size-accepted"

    def apply(self) -> None:
        from impl_flax import validation

        original = validation.check_range

        def off_by_one(name, x, upper, upper_name):
            original(name, x, upper + 1 if name == "input_ids" else upper, upper_name)

        patch(validation, "check_range", off_by_one)


class LossMeanOfShardMeans(_Broken):
    """Under sharding the masked-LM loss is the mean of each data shard's own mean (a reduction over the
    local shard only), not the mean over the whole batch's non-ignored labels: equal only when every
    shard holds as many of them."""
    defect = "loss-mean-of-shard-means"

    def apply(self):
        import jax

        from impl_flax import sharding

        whole_batch = sharding.class_loss

        def mean_of_shard_means(model, outputs, batch):
            shards = jax.device_count()
            rows = batch["labels"].shape[0] // shards
            means = []
            for i in range(shards):
                part = slice(i * rows, (i + 1) * rows)
                shard_outputs = type(outputs)(**{**dict(outputs.items()), "logits": outputs.logits[part]})
                means.append(whole_batch(model, shard_outputs, {k: v[part] for k, v in batch.items()}))
            return sum(means) / shards

        patch(sharding, "class_loss", mean_of_shard_means)


class InitCacheUnchecked(_Broken):
    """init_cache builds whatever cache its arguments shape, checking neither the config nor the sizes
    (a length of 0 gives an empty cache that every later call overflows)."""
    defect = "init-cache-unchecked"

    def apply(self):
        import jax
        import jax.numpy as jnp
        from flax.core import unfreeze

        from impl_flax.model_base import FlaxElectraPreTrainedModel

        def init_cache(model, batch_size, max_length):
            inputs = model._dummy_inputs((batch_size, max_length))
            tree = jax.eval_shape(lambda: model.module.init(jax.random.PRNGKey(0), **inputs, init_cache=True))
            return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), unfreeze(tree["cache"]))

        patch(FlaxElectraPreTrainedModel, "init_cache", init_cache)


class SavedParamsUnchecked(_Broken):
    """save_pretrained(params=...) writes the tree it is given without comparing it with the model: a missing,
    extra or reshaped parameter ends up in the checkpoint."""
    defect = "saved-params-unchecked"

    def apply(self):
        from impl_flax import checkpoint

        patch(checkpoint, "save_pretrained",
              lambda model, directory, params, formats: checkpoint.save_state(
                  directory, checkpoint.flax_to_pt(checkpoint._numpy_tree(params)), model.config,
                  formats=tuple(formats)))


class IntegerParamsSaved(_Broken):
    """The save's dtype check looks for complex and object arrays only: an integer or bool parameter is written
    into a checkpoint that from_pretrained then refuses."""
    defect = "integer-params-saved"

    def apply(self):
        from electra_core.checkpoint import state

        def canonical_arrays(named):
            arrays = {name: np.ascontiguousarray(np.asarray(value)) for name, value in named.items()}
            for name, array in arrays.items():
                if array.dtype.kind in "cO":
                    raise TypeError(f"parameter {name!r} has dtype {array.dtype}; checkpoints hold float arrays")
            return arrays

        patch(state, "_canonical_arrays", canonical_arrays)
