"""Running the impl_flax classes sharded over a device mesh (jax.sharding).

A mesh has the axes "data" (batch) and "model" (tensor parallelism): ``make_mesh(devices, data, model)``.
A *layout* places the parameters; in every layout the inputs' batch axis is split over "data" (which
may have size 1) and outputs and losses come back replicated (gathered). "data": data parallel, every
parameter replicated; "tensor": tensor parallel over "model" (column/row splits in the table), the rest
replicated; "fsdp": fully sharded, every parameter of rank >= 1 split over "data" along its first axis
whose size the "data" axis size divides, replicated when none does. Parameters saved with
``model.save_pretrained(folder, params=sharded)`` are gathered to the host and load on one device.

Key: B batch, S sequence, H hidden, N heads, D head size (N*D = H), I intermediate, V vocab,
E embedding, P max positions, T type vocab, K labels. Shapes in Flax layout (kernels (in, out)). A
rule matches the end of the Flax path joined with "." (any ``electra.`` prefix, {i} any layer index,
``crossattention`` like ``attention``). "fsdp" splits every row over "data" (first dividing axis).

=========================================  ========  ===  ================  ==========================
parameter (end of the Flax path)           shape     data tensor            split
=========================================  ========  ===  ================  ==========================
attention.self.{query,key,value}.kernel    (H, N*D)  P()  P(None, "model")  columns (heads)
attention.self.{query,key,value}.bias      (N*D,)    P()  P("model")        like its kernel's columns
attention.output.dense.kernel              (N*D, H)  P()  P("model", None)  rows (input)
layer.{i}.intermediate.dense.kernel        (H, I)    P()  P(None, "model")  columns
layer.{i}.intermediate.dense.bias          (I,)      P()  P("model")        like its kernel's columns
layer.{i}.output.dense.kernel              (I, H)    P()  P("model", None)  rows (input)
embeddings.word_embeddings.embedding       (V, E)    P()  P("model", None)  vocab
generator_lm_head.kernel (untied head)     (E, V)    P()  P(None, "model")  vocab
generator_lm_head.bias                     (V,)      P()  P("model")        vocab
anything else: row-split biases (H,),      any       P()  P()               replicated
position (P, E) / type (T, E) tables,
LayerNorms (E,) (H,), heads (H, K) ...
call inputs (B, S) / (B, C, S)             (B, ...)  P("data") in every layout
outputs, loss                              any       P() (gathered) in every layout
=========================================  ========  ===  ================  ==========================

Fallback: no rule produces a split whose mesh-axis size does not divide the dimension. "tensor" then
replicates that parameter whole (V = 50 on a model axis of 4: word embeddings and LM-head bias stay
P()); "fsdp" takes the next axis that divides, else replicates. The query/key/value split is over N*D:
whole heads stay on a device when the model axis size divides N, else XLA regroups them (same numbers,
more communication). Canonical PyTorch names (``...query.weight``, PT's (out, in) shape) work too; their
spec is then in PT's layout (axes swapped for transposed linear weights).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from electra_core.checkpoint.names import pt_name_to_flax_path
from electra_core.limits import spec_class_name
from impl_flax import losses, validation
from spec import load_spec

DATA, MODEL = "data", "model"
LAYOUTS = ("data", "tensor", "fsdp")
#: call inputs whose leading axis is the batch (sharded over "data"); label entries of a train batch
BATCHED_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "encoder_hidden_states",
                  "encoder_attention_mask")
LABEL_KEYS = ("labels", "start_positions", "end_positions")

_ATTENTION = r"(?:^|\.)(?:attention|crossattention)\."
_LAYER = r"(?:^|\.)layer\.\d+\."
_TENSOR_RULES = tuple((re.compile(pattern), axes) for pattern, axes in (
    (_ATTENTION + r"self\.(?:query|key|value)\.kernel$", (None, MODEL)),   # (H, N*D): column split
    (_ATTENTION + r"self\.(?:query|key|value)\.bias$", (MODEL,)),           # (N*D,)
    (_ATTENTION + r"output\.dense\.kernel$", (MODEL, None)),                # (N*D, H): row split
    (_LAYER + r"intermediate\.dense\.kernel$", (None, MODEL)),              # (H, I): column split
    (_LAYER + r"intermediate\.dense\.bias$", (MODEL,)),                     # (I,)
    (_LAYER + r"output\.dense\.kernel$", (MODEL, None)),                    # (I, H): row split
    (r"(?:^|\.)embeddings\.word_embeddings\.embedding$", (MODEL, None)),   # (V, E): vocab split
    (r"(?:^|\.)generator_lm_head\.kernel$", (None, MODEL)),                 # (E, V): vocab split
    (r"(?:^|\.)generator_lm_head\.bias$", (MODEL,)),                        # (V,)
))


# -- partition rules ------------------------------------------------------------------------------
def _flax_view(name: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...], bool]:
    """(Flax-path name, Flax-layout shape, transposed) of a Flax-path or canonical PyTorch name."""
    if name.rsplit(".", 1)[-1] != "weight":  # Flax leaves: kernel, bias, scale, embedding
        return name, shape, False
    path, transposed = pt_name_to_flax_path(name)
    return ".".join(path), (shape[::-1] if transposed else shape), transposed


def _axes(name: str, shape: tuple[int, ...], layout: str, sizes: Mapping[str, int]) -> tuple:
    """One mesh axis (or None) per dimension of a Flax-layout parameter."""
    replicated = (None,) * len(shape)
    if layout == "data":
        return replicated
    if layout == "fsdp":
        size = sizes.get(DATA, 1)
        first = next((i for i, dim in enumerate(shape) if dim % size == 0), None)
        return replicated if first is None else replicated[:first] + (DATA,) + replicated[first + 1:]
    for pattern, axes in _TENSOR_RULES:
        if pattern.search(name):
            if len(axes) != len(shape):
                raise ValueError(f"parameter {name!r} has shape {shape}; its tensor rule expects rank {len(axes)}")
            fits = all(axis is None or dim % sizes.get(axis, 1) == 0 for axis, dim in zip(axes, shape))
            return axes if fits else replicated
    return replicated


def partition_spec(name: str, shape: tuple[int, ...], layout: str, *,
                   axis_sizes: Mapping[str, int] | None = None) -> PartitionSpec:
    """The PartitionSpec of parameter ``name`` (Flax path joined with ".", or its canonical PyTorch name)
    of ``shape`` under ``layout`` (module table). ``axis_sizes`` (e.g. ``mesh.shape``) decides which
    splits divide; None counts every axis as size 1 (the table's rules, no fallback). P() = replicated."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    flax_name, flax_shape, transposed = _flax_view(name, tuple(int(d) for d in shape))
    axes = _axes(flax_name, flax_shape, layout, dict(axis_sizes or {}))
    if transposed:
        axes = axes[::-1]
    return PartitionSpec(*axes) if any(axis is not None for axis in axes) else PartitionSpec()


def param_shardings(params: Any, mesh: Mesh, layout: str) -> Any:
    """The NamedSharding of every leaf of ``params`` (arrays or ShapeDtypeStructs), same tree."""
    needed = (DATA, MODEL) if layout == "tensor" else (DATA,)
    if not set(needed) <= set(mesh.axis_names):
        raise ValueError(f"layout {layout!r} needs mesh axes {needed}, the mesh has {tuple(mesh.axis_names)}")

    def sharding(path, leaf):
        name = jax.tree_util.keystr(path, simple=True, separator=".")
        return NamedSharding(mesh, partition_spec(name, np.shape(leaf), layout, axis_sizes=mesh.shape))

    return jax.tree_util.tree_map_with_path(sharding, params)


def shard_params(params: Any, mesh: Mesh, layout: str) -> Any:
    """``params`` placed on ``mesh`` as the layout's rules say (jax.device_put with NamedShardings)."""
    return jax.device_put(params, param_shardings(params, mesh, layout))


def make_mesh(devices: Sequence[Any], data: int, model: int) -> Mesh:
    """A (data, model) mesh with axes ("data", "model") over ``devices`` (data * model of them)."""
    devices = list(devices)
    if data < 1 or model < 1:
        raise ValueError(f"mesh axis sizes must be >= 1, got data={data}, model={model}")
    if data * model != len(devices):
        raise ValueError(f"a mesh of data={data} x model={model} needs {data * model} devices, "
                         f"got {len(devices)}")
    return Mesh(np.asarray(devices, dtype=object).reshape(data, model), (DATA, MODEL))


# -- sharded calls ----------------------------------------------------------------------------------
def _check_batch(batch_size: int, mesh: Mesh) -> None:
    if batch_size % mesh.shape[DATA]:
        raise ValueError(f"batch size {batch_size} is not divisible by the mesh's {DATA!r} axis size "
                         f"{mesh.shape[DATA]}: every data shard needs the same number of examples")


def _placements(model, mesh: Mesh, layout: str):
    """(parameter shardings, batch sharding (leading axis over "data"), replicated sharding)."""
    return (param_shardings(model.params_shape_tree, mesh, layout), NamedSharding(mesh, PartitionSpec(DATA)),
            NamedSharding(mesh, PartitionSpec()))


def _placed(model, params: Any, params_sh: Any) -> Any:
    """``params`` checked against ``model`` (ValueError naming wrong entries) and moved to ``params_sh``."""
    model.check_params(params)
    return jax.device_put(params, params_sh)


def sharded_apply(model, mesh: Mesh, layout: str, **flags: bool) -> Callable:
    """A jitted ``apply(params, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
    head_mask=None, encoder_hidden_states=None, encoder_attention_mask=None, dropout_rng=None)`` giving
    ``model``'s outputs replicated on every device. Inputs (B, S) / (B, C, S) are split over "data" (B a
    multiple of its size) after the host checks of an eager call; params are moved to the layout first.
    ``flags``: output_attentions, output_hidden_states, return_dict, train (others: the model's TypeError
    at the first call). No key/value cache."""
    params_sh, batch_sh, replicated = _placements(model, mesh, layout)

    def forward(params, batch, head_mask, dropout_rng):
        return model(**batch, head_mask=head_mask, params=params, dropout_rng=dropout_rng, **flags)

    jitted = jax.jit(forward, in_shardings=(params_sh, batch_sh, replicated, replicated), out_shardings=replicated)

    def apply(params, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
              encoder_hidden_states=None, encoder_attention_mask=None, dropout_rng=None):
        inputs = validation.prepare_call_inputs(
            model.config, lead_rank=model.input_lead_rank, input_ids=input_ids, attention_mask=attention_mask,
            token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
            compute_dtype=model.dtype)
        _check_batch(inputs["input_ids"].shape[0], mesh)
        batch = {k: v for k, v in inputs.items() if k in BATCHED_INPUTS and v is not None}
        return jitted(_placed(model, params, params_sh), batch, inputs["head_mask"], dropout_rng)

    return apply


def _loss_kind(model) -> tuple[str, str]:
    """(spec class name, losses.yaml loss) of ``model``; ValueError for a class without a loss."""
    name = spec_class_name(type(model))
    kind = load_spec().classes[name].loss
    if kind is None:
        raise ValueError(f"{name} computes no loss; classes with one: {sorted(losses.LOSS_OF_CLASS)}")
    return name, kind


def class_loss(model, outputs, batch: Mapping[str, Any]):
    """The scalar float32 loss of ``model``'s class (impl_flax.losses) from its outputs and the labels in
    ``batch``: "labels", or "start_positions" and "end_positions" (question answering)."""
    name, kind = _loss_kind(model)
    fn = losses.LOSS_OF_CLASS[name]
    if kind == "question_answering":
        return fn(outputs.start_logits, outputs.end_logits, batch["start_positions"], batch["end_positions"])
    if kind == "pretraining":
        return fn(outputs.logits, batch["labels"], batch.get("attention_mask"))
    if kind == "sequence_classification":
        return fn(outputs.logits, batch["labels"], model.config.problem_type)
    return fn(outputs.logits, batch["labels"])


def _train_batch(model, batch: Mapping[str, Any], mesh: Mesh) -> dict:
    """``batch``'s inputs after the host checks of an eager call, plus its labels; None entries dropped."""
    name, kind = _loss_kind(model)
    needed = {"input_ids"} | ({"start_positions", "end_positions"} if kind == "question_answering" else {"labels"})
    missing, unknown = sorted(needed - set(batch)), sorted(set(batch) - set(BATCHED_INPUTS) - set(LABEL_KEYS))
    if missing or unknown:
        raise ValueError(f"a {name} train batch needs {sorted(needed)} plus any of {BATCHED_INPUTS}; "
                         f"missing {missing}, unknown {unknown}")
    inputs = validation.prepare_call_inputs(model.config, lead_rank=model.input_lead_rank, compute_dtype=model.dtype,
                                            **{k: batch.get(k) for k in BATCHED_INPUTS})
    _check_batch(inputs["input_ids"].shape[0], mesh)
    labels = {k: batch[k] for k in LABEL_KEYS if batch.get(k) is not None}
    return {**{k: v for k, v in inputs.items() if k in BATCHED_INPUTS and v is not None}, **labels}


def _loss_of(model) -> Callable:
    """(params, batch, dropout_rng) -> loss; dropout_rng None runs without dropout (train=False)."""
    def loss(params, batch, dropout_rng):
        inputs = {k: v for k, v in batch.items() if k in BATCHED_INPUTS}
        outputs = model(**inputs, params=params, dropout_rng=dropout_rng, train=dropout_rng is not None)
        return class_loss(model, outputs, batch)
    return loss


def sharded_value_and_grad(model, mesh: Mesh, layout: str) -> Callable:
    """A jitted ``(params, batch, dropout_rng=None) -> (loss, grads)``: the class loss (replicated) and its
    gradients in the parameters' shardings. ``batch``: call inputs plus labels (class_loss)."""
    _loss_kind(model)
    params_sh, batch_sh, replicated = _placements(model, mesh, layout)
    jitted = jax.jit(jax.value_and_grad(_loss_of(model)), in_shardings=(params_sh, batch_sh, replicated),
                     out_shardings=(replicated, params_sh))

    def value_and_grad(params, batch, dropout_rng=None):
        batch = _train_batch(model, batch, mesh)
        return jitted(_placed(model, params, params_sh), batch, dropout_rng)

    return value_and_grad


def sharded_train_step(model, optimizer: optax.GradientTransformation, mesh: Mesh, layout: str) -> Callable:
    """A jitted ``step(params, opt_state, batch, dropout_rng=None) -> (params, opt_state, loss)``: one
    optimizer step on the class loss (dropout_rng None: no dropout). Params and the optimizer state's
    parameter-shaped parts (adam's mu, nu) are kept in the layout's shardings, other state replicated;
    inputs are moved there first, so ``optimizer.init(params)`` of any placement works."""
    _loss_kind(model)
    params_sh, batch_sh, replicated = _placements(model, mesh, layout)
    state_sh = optax.tree_map_params(optimizer, lambda _, sharding: sharding,
                                     jax.eval_shape(optimizer.init, model.params_shape_tree), params_sh,
                                     transform_non_params=lambda _: replicated)
    loss_of = _loss_of(model)

    def step(params, opt_state, batch, dropout_rng):
        loss, grads = jax.value_and_grad(loss_of)(params, batch, dropout_rng)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    jitted = jax.jit(step, in_shardings=(params_sh, state_sh, batch_sh, replicated),
                     out_shardings=(params_sh, state_sh, replicated))

    def train_step(params, opt_state, batch, dropout_rng=None):
        batch = _train_batch(model, batch, mesh)
        return jitted(_placed(model, params, params_sh), jax.device_put(opt_state, state_sh), batch, dropout_rng)

    return train_step


__all__ = ["DATA", "MODEL", "LAYOUTS", "partition_spec", "param_shardings", "shard_params",
           "make_mesh", "sharded_apply", "class_loss", "sharded_value_and_grad", "sharded_train_step"]
