"""FlaxElectraPreTrainedModel: the user-facing wrapper around a linen module.

It owns the parameters (``.params``, validated on assignment), builds them (``init_weights``), checks
call inputs on the host (``validation``), and runs ``module.apply`` through one ``jax.jit`` per model,
compiled once per input shapes, flags and set of given inputs (omitted inputs get their defaults inside
the compiled call: no host work and no transfer for them). Shapes: B batch, C choices, S sequence, L layers,
N heads, H hidden.
"""
from __future__ import annotations

import numbers
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax.core import unfreeze
from flax.traverse_util import flatten_dict, unflatten_dict

from electra_core.config import ElectraConfig
from electra_core.limits import check_parameter_memory, spec_class_name
from impl_flax import validation
from impl_flax.cache import cache_state
from impl_flax.modeling.frozen_config import FrozenConfig
from impl_flax.outputs import OUTPUT_CLASSES
from impl_flax.precision import cast_floating
from spec import load_spec


class FlaxElectraPreTrainedModel:
    """Base of the eight public classes; a subclass sets ``module_class``."""

    config_class = ElectraConfig
    base_model_prefix = "electra"
    module_class: type = None
    #: rank of the leading input dims: 1 for (B, S), 2 for multiple choice (B, C, S)
    input_lead_rank: int = 1

    def __init__(self, config: ElectraConfig, input_shape: tuple = (1, 1), seed: int = 0, dtype=jnp.float32,
                 _do_init: bool = True, gradient_checkpointing: bool = False, **kwargs: Any):
        if not isinstance(config, ElectraConfig):
            raise TypeError(f"config must be an ElectraConfig, got {type(config).__name__}")
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}")
        config.validate()
        self.check_config(config)
        check_parameter_memory(spec_class_name(type(self)), config)  # before anything is allocated
        if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
            raise TypeError(f"dtype must be a floating-point dtype (float32, bfloat16, float16), got {dtype}")
        self.config = config
        self._dtype = jnp.dtype(dtype)
        self.input_shape = tuple(input_shape)
        self.seed = seed
        self.key = jax.random.PRNGKey(seed)
        self._missing_keys: set = set()
        self._params = None
        self._build_module(gradient_checkpointing)
        self._is_initialized = bool(_do_init)
        if _do_init:
            self._params = self.init_weights(self.key, self.input_shape)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def check_config(cls, config: ElectraConfig) -> None:
        """Class-specific config requirements (overridden where a head needs them)."""

    def _build_module(self, gradient_checkpointing: bool) -> None:
        self._gradient_checkpointing = gradient_checkpointing
        self._module = self.module_class(FrozenConfig(self.config), dtype=self._dtype,
                                         gradient_checkpointing=gradient_checkpointing)
        self._shape_tree = None
        self._validated_params = set()

    def enable_gradient_checkpointing(self) -> None:
        """Rematerialise every encoder layer in the backward pass (same numbers, less memory)."""
        self._build_module(True)

    @property
    def module(self):
        return self._module

    @property
    def dtype(self):
        return self._dtype

    @property
    def output_class(self):
        return OUTPUT_CLASSES[load_spec().classes[type(self).__name__].output_class]

    def _dummy_inputs(self, input_shape: tuple) -> dict:
        shape = tuple(input_shape)
        if self.input_lead_rank == 2 and len(shape) == 2:
            shape = (shape[0], 1, shape[1])
        ids = jnp.zeros(shape, jnp.int32)
        flat_batch = int(np.prod(shape[:-1]))
        inputs = {"input_ids": ids, "attention_mask": jnp.ones(shape, jnp.int32), "token_type_ids": ids,
                  "position_ids": jnp.broadcast_to(jnp.arange(shape[-1], dtype=jnp.int32), shape),
                  "head_mask": jnp.ones((self.config.num_hidden_layers, self.config.num_attention_heads))}
        if self.config.add_cross_attention:
            inputs["encoder_hidden_states"] = jnp.zeros((flat_batch, shape[-1], self.config.hidden_size))
            inputs["encoder_attention_mask"] = jnp.ones((flat_batch, shape[-1]), jnp.int32)
        return inputs

    def _init_variables(self, rng, input_shape: tuple) -> dict:
        params_rng, dropout_rng = jax.random.split(rng)
        inputs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in self._dummy_inputs(input_shape).items()}
        return self._module.lazy_init({"params": params_rng, "dropout": dropout_rng}, **inputs)

    def init_weights(self, rng, input_shape: tuple, params: dict | None = None) -> dict:
        """Fresh parameters from ``rng``; with ``params``, only the missing entries are filled in."""
        random_params = unfreeze(self._init_variables(rng, input_shape)["params"])
        if params is None:
            return random_params
        given = flatten_dict(unfreeze(params))
        fresh = flatten_dict(random_params)
        missing = self._missing_keys or (set(fresh) - set(given))
        for key in missing:
            given[key] = fresh[key]
        self._missing_keys = set()
        return unflatten_dict(given)

    @property
    def params_shape_tree(self) -> dict:
        """The parameter tree as ShapeDtypeStructs (no memory allocated)."""
        if self._shape_tree is None:
            tree = jax.eval_shape(lambda: self._init_variables(jax.random.PRNGKey(0), self.input_shape))
            self._shape_tree = unfreeze(tree["params"])
        return self._shape_tree

    @property
    def required_params(self) -> set:
        return set(flatten_dict(self.params_shape_tree))

    # -- parameters -------------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        if not self._is_initialized:
            raise ValueError("this model was built with _do_init=False and holds no parameters: pass params=... "
                             "to the call, or set model.params (from_pretrained(..., _do_init=False) returns them)")
        return self._params

    @params.setter
    def params(self, params: dict) -> None:
        params = unfreeze(params)
        self.check_params(params)
        self._params = params
        self._is_initialized = True

    def check_params(self, params: dict) -> None:
        """ValueError naming missing, unexpected and wrongly shaped entries of ``params``."""
        leaves = jax.tree_util.tree_leaves_with_path(params)
        signature = (jax.tree_util.tree_structure(params),
                     tuple(tuple(np.shape(leaf)) for _, leaf in leaves))
        if signature in self._validated_params:
            return
        expected = flatten_dict(self.params_shape_tree)
        actual = flatten_dict(unfreeze(params))
        problems = []
        missing = sorted("/".join(k) for k in set(expected) - set(actual))
        unexpected = sorted("/".join(k) for k in set(actual) - set(expected))
        if missing:
            problems.append(f"missing: {missing}")
        if unexpected:
            problems.append(f"unexpected: {unexpected}")
        for key in sorted(set(expected) & set(actual)):
            if tuple(np.shape(actual[key])) != tuple(expected[key].shape):
                problems.append(f"{'/'.join(key)} has shape {tuple(np.shape(actual[key]))}, "
                                f"expected {tuple(expected[key].shape)}")
        if problems:
            raise ValueError(f"params do not fit {type(self).__name__}: " + "; ".join(problems))
        self._validated_params.add(signature)

    def to_bf16(self, params: dict, mask: Any = None) -> dict:
        return cast_floating(params, jnp.bfloat16, mask)

    def to_fp16(self, params: dict, mask: Any = None) -> dict:
        return cast_floating(params, jnp.float16, mask)

    def to_fp32(self, params: dict, mask: Any = None) -> dict:
        return cast_floating(params, jnp.float32, mask)

    # -- calling ----------------------------------------------------------------------------------
    def init_cache(self, batch_size: int, max_length: int) -> dict:
        """An empty key/value cache ("cache" collection) for ``batch_size`` sequences of up to
        ``max_length`` positions; pass it as past_key_values (decoders: config.is_decoder). Anything
        else is error.init_cache.arguments."""
        c, name = self.config, f"{type(self).__name__}.init_cache"
        if not c.is_decoder:
            raise ValueError(f"{name} needs a decoder (config.is_decoder=True)")
        if not c.use_cache:
            raise ValueError(f"{name} was called but config.use_cache is False")
        for arg, value in (("batch_size", batch_size), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
        inputs = self._dummy_inputs((int(batch_size), int(max_length)))
        tree = jax.eval_shape(lambda: self._module.init(jax.random.PRNGKey(0), **inputs, init_cache=True))
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), unfreeze(tree["cache"]))

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, params: dict | None = None,
                 dropout_rng=None, train: bool = False, output_attentions: bool | None = None,
                 output_hidden_states: bool | None = None, return_dict: bool | None = None,
                 past_key_values: dict | None = None):
        """input_ids (B, S) or (B, C, S) int; attention_mask (B, Sp+S); token_type_ids, position_ids like
        input_ids; head_mask (N,) or (L, N); encoder_hidden_states (B, Se, H); encoder_attention_mask (B, Se).
        Returns the class's output (or its tuple form with return_dict=False)."""
        c = self.config
        output_attentions = c.output_attentions if output_attentions is None else bool(output_attentions)
        output_hidden_states = c.output_hidden_states if output_hidden_states is None else bool(output_hidden_states)
        return_dict = c.return_dict if return_dict is None else bool(return_dict)
        train = bool(train)
        if train and dropout_rng is None and self._has_dropout():
            raise ValueError("train=True needs a dropout_rng (a jax.random key): dropout is never silently skipped")
        state = None
        if past_key_values is not None:
            if not c.is_decoder:
                raise ValueError("past_key_values was given but the model is not a decoder (config.is_decoder=False)")
            state = cache_state(past_key_values, self)
        inputs = validation.prepare_call_inputs(
            c, lead_rank=self.input_lead_rank, input_ids=input_ids, attention_mask=attention_mask,
            token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
            cache_state=state, compute_dtype=self._dtype)
        if params is None:
            params = self.params
        else:
            self.check_params(params)
        rng = dropout_rng if train else None
        flags = (output_attentions, output_hidden_states, train)
        outputs = _jitted_forward(params, past_key_values, rng, inputs, module=self._module,
                                  output_class=self.output_class, flags=flags)
        return outputs if return_dict else outputs.to_tuple()

    def dropout_rates(self) -> list[float]:
        """The dropout rates this class applies with train=True (heads add theirs)."""
        return [self.config.hidden_dropout_prob, self.config.attention_probs_dropout_prob]

    def _has_dropout(self) -> bool:
        return any(rate > 0 for rate in self.dropout_rates())

    @property
    def trace_count(self) -> int:
        """How often the jitted call was traced (compiled) for this model's module so far. The compile
        cache is shared by every model whose module (class, config, dtype) is equal."""
        return _TRACE_COUNTS.get(self._module, 0)

    # -- files ------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        dtype=jnp.float32, _do_init: bool = True, ignore_mismatched_sizes: bool = False,
                        config: ElectraConfig | None = None, **kwargs: Any):
        """Load a checkpoint directory or hub id (flax_model.msgpack or model.safetensors). ``kwargs``:
        the hub options token, proxies, force_download, subfolder; the loader options use_safetensors,
        from_pt; ElectraConfig fields overriding the loaded config. Anything else is a TypeError
        (error.loader.keyword)."""
        from impl_flax.checkpoint import load_pretrained

        return load_pretrained(cls, pretrained_model_name_or_path, dtype=dtype, _do_init=_do_init,
                               ignore_mismatched_sizes=ignore_mismatched_sizes, config=config,
                               options=dict(kwargs, revision=revision, cache_dir=cache_dir,
                                            local_files_only=local_files_only))

    def save_pretrained(self, save_directory: str | os.PathLike, params: dict | None = None,
                        safe_serialization: bool | None = None, formats: tuple[str, ...] | None = None) -> None:
        """Write config.json plus weights atomically (api.save_pretrained): by default both
        flax_model.msgpack and model.safetensors (PyTorch names); safe_serialization=True only
        model.safetensors, False only flax_model.msgpack; ``formats`` selects explicitly."""
        from impl_flax.checkpoint import save_pretrained

        if formats is None:
            formats = {None: ("msgpack", "safetensors"), True: ("safetensors",), False: ("msgpack",)}[safe_serialization]
        elif safe_serialization is not None:
            raise ValueError("pass either safe_serialization or formats to save_pretrained, not both")

        save_pretrained(self, save_directory, self.params if params is None else params, formats)


# One compile cache for every model instance: modules with equal class, config and dtype compare
# equal, so a new instance (from_pretrained, a second model) reuses what an earlier one compiled.
_TRACE_COUNTS: dict = {}


def _forward(params, cache, dropout_rng, inputs, *, module, output_class, flags):
    """The traced body: module.apply with the "cache" collection mutable when a cache is given."""
    _TRACE_COUNTS[module] = _TRACE_COUNTS.get(module, 0) + 1
    output_attentions, output_hidden_states, train = flags
    inputs = validation.fill_defaults(inputs, cache)
    variables = {"params": params}
    if cache is not None:
        variables["cache"] = cache
    rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
    result = module.apply(variables, **inputs, deterministic=not train, output_attentions=output_attentions,
                          output_hidden_states=output_hidden_states, rngs=rngs,
                          mutable=["cache"] if cache is not None else False)
    if cache is not None:
        fields, mutated = result
        fields = {**fields, "past_key_values": unfreeze(mutated["cache"])}
    else:
        fields = result
    return output_class(**{name: fields.get(name) for name in output_class._fields})


_jitted_forward = jax.jit(_forward, static_argnames=("module", "output_class", "flags"))
