"""The documented Flax API surface: names importable from impl_flax, signatures per classes.yaml, output
containers, config-flag fallbacks, params handling, dtypes and precision casts, gradient checkpointing."""
from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

import impl_flax
from electra_core.checkpoint import expected_shapes, flax_to_pt
from flax_helpers import FLAX_CLASSES, assert_close, build, inputs_for, tiny_config
from spec import load_spec

SPEC = load_spec()
KINDS = {"positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
         "keyword_only": inspect.Parameter.KEYWORD_ONLY, "var_keyword": inspect.Parameter.VAR_KEYWORD,
         "var_positional": inspect.Parameter.VAR_POSITIONAL}


@pytest.fixture(scope="module")
def mlm():
    config = tiny_config("FlaxElectraForMaskedLM")
    return build("FlaxElectraForMaskedLM", config), inputs_for("FlaxElectraForMaskedLM", config)


def test_every_class_config_and_output_class_is_importable_from_the_package():
    for name in [*FLAX_CLASSES, "ElectraConfig", *(o for o in SPEC.outputs if o.startswith("Flax"))]:
        assert hasattr(impl_flax, name), name
        assert name in impl_flax.__all__


@pytest.mark.parametrize("class_name", FLAX_CLASSES)
def test_signatures_follow_the_spec(class_name):
    spec_class = SPEC.classes[class_name]
    cls = getattr(impl_flax, class_name)
    for method, params in ((cls.__init__, spec_class.constructor), (cls.__call__, spec_class.call)):
        actual = [(p.name, p.kind) for p in list(inspect.signature(method).parameters.values())[1:]]
        assert actual == [(p.name, KINDS[p.kind]) for p in params], method


def test_constructor_literal_defaults_follow_the_spec():
    signature = inspect.signature(impl_flax.FlaxElectraModel.__init__).parameters
    assert signature["input_shape"].default == (1, 1)
    assert signature["seed"].default == 0
    assert signature["dtype"].default == jnp.float32
    assert signature["_do_init"].default is True and signature["gradient_checkpointing"].default is False


@pytest.mark.parametrize("class_name", FLAX_CLASSES)
def test_param_tree_has_the_checkpoint_names_and_shapes(class_name):
    config = tiny_config(class_name, add_cross_attention=class_name == "FlaxElectraForCausalLM",
                         position_embedding_type="relative_key")
    model = build(class_name, config, _do_init=False)
    shapes = {k: v.shape for k, v in flatten_dict(model.params_shape_tree).items()}
    canonical = {name: tuple(np.shape(v)) for name, v in
                 flax_to_pt(jax.tree_util.tree_map(lambda s: np.zeros(s.shape), model.params_shape_tree)).items()}
    assert canonical == expected_shapes(class_name, config)
    assert len(shapes) == len(canonical)


def test_output_supports_attribute_key_index_access_and_tuple_form(mlm):
    model, inputs = mlm
    out = model(**inputs, output_hidden_states=True)
    assert out.logits is out["logits"] is out[0]
    assert out.attentions is None and "attentions" not in out
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    as_tuple = model(**inputs, output_hidden_states=True, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    np.testing.assert_array_equal(as_tuple[0], out.logits)
    assert type(out).__name__ == SPEC.classes["FlaxElectraForMaskedLM"].output_class


def test_output_flags_fall_back_to_the_config_at_call_time(mlm):
    model, inputs = mlm
    try:
        model.config.output_attentions = True
        model.config.return_dict = False
        out = model(**inputs)
        assert isinstance(out, tuple) and len(out) == 2  # logits, attentions
        assert len(model(**inputs, output_attentions=False)) == 1
    finally:
        model.config.output_attentions = False
        model.config.return_dict = True


def test_params_argument_overrides_without_changing_model_params(mlm):
    model, inputs = mlm
    before = model(**inputs).logits
    zeros = jax.tree_util.tree_map(jnp.zeros_like, model.params)
    assert not np.allclose(model(**inputs, params=zeros).logits, before)
    np.testing.assert_array_equal(model(**inputs).logits, before)


def test_params_setter_names_missing_and_misshaped_entries(mlm):
    model, _ = mlm
    broken = jax.tree_util.tree_map(lambda x: x, model.params)
    del broken["generator_lm_head"]
    with pytest.raises(ValueError, match="generator_lm_head/bias"):
        model.params = broken
    broken = jax.tree_util.tree_map(lambda x: x, model.params)
    broken["generator_lm_head"]["bias"] = jnp.zeros(3)
    with pytest.raises(ValueError, match=r"\(3,\).*expected \(32,\)"):
        model.params = broken


def test_do_init_false_creates_no_params_and_init_weights_fills_missing_leaves():
    model = build("FlaxElectraForSequenceClassification", _do_init=False)
    with pytest.raises(ValueError, match="_do_init=False"):
        _ = model.params
    fresh = model.init_weights(jax.random.PRNGKey(1), (1, 4))
    partial = {"electra": fresh["electra"]}
    filled = model.init_weights(jax.random.PRNGKey(2), (1, 4), params=partial)
    assert set(flatten_dict(filled)) == set(flatten_dict(fresh))
    np.testing.assert_array_equal(filled["electra"]["embeddings"]["word_embeddings"]["embedding"],
                                  fresh["electra"]["embeddings"]["word_embeddings"]["embedding"])
    model.params = filled  # validates


def test_seed_determines_the_initial_parameters():
    a, b, c = (build("FlaxElectraModel", seed=s) for s in (0, 0, 1))
    word = lambda m: m.params["embeddings"]["word_embeddings"]["embedding"]  # noqa: E731
    np.testing.assert_array_equal(word(a), word(b))
    assert not np.allclose(word(a), word(c))


def test_unknown_constructor_keyword_is_an_error():
    with pytest.raises(TypeError, match="not_an_option"):
        build("FlaxElectraModel", not_an_option=1)


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels"):
        build("FlaxElectraForQuestionAnswering", tiny_config(num_labels=3))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_compute_dtype_keeps_float32_params_and_stays_close_to_float32(dtype, mlm):
    reference_model, inputs = mlm
    model = build("FlaxElectraForMaskedLM", reference_model.config, dtype=getattr(jnp, dtype), _do_init=False)
    model.params = reference_model.params
    logits = model(**inputs).logits
    assert logits.dtype == jnp.dtype(dtype)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(model.params))
    assert_close(np.asarray(logits, np.float32), reference_model(**inputs).logits, "logits",
                 kind="low_precision_vs_float32", dtype=dtype)


def test_precision_casts_respect_the_mask_and_leave_the_input_unchanged(mlm):
    model, _ = mlm
    params = model.params
    half = model.to_bf16(params)
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree_util.tree_leaves(half))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(params))
    mask = jax.tree_util.tree_map_with_path(lambda path, _: "LayerNorm" not in jax.tree_util.keystr(path), params)
    partly = flatten_dict(model.to_fp16(params, mask))
    for key, leaf in partly.items():
        assert leaf.dtype == (jnp.float32 if "LayerNorm" in key else jnp.float16), key
    back = model.to_fp32(half)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(back))
    word = ("electra", "embeddings", "word_embeddings", "embedding")
    np.testing.assert_allclose(flatten_dict(back)[word], flatten_dict(params)[word], rtol=2 ** -8)


def test_gradient_checkpointing_gives_the_same_outputs_and_gradients():
    config = tiny_config("FlaxElectraForPreTraining", num_hidden_layers=1)
    plain = build("FlaxElectraForPreTraining", config)
    remat = build("FlaxElectraForPreTraining", config, gradient_checkpointing=True, _do_init=False)
    remat.params = plain.params
    inputs = inputs_for("FlaxElectraForPreTraining", config)

    def loss(params, model):
        return jnp.sum(model(**inputs, params=params).logits ** 2)

    grads = [jax.grad(loss)(plain.params, m) for m in (plain, remat)]
    for a, b in zip(jax.tree_util.tree_leaves(grads[0]), jax.tree_util.tree_leaves(grads[1])):
        assert_close(b, a, kind="compiled_vs_eager")
    plain.enable_gradient_checkpointing()
    assert_close(plain(**inputs).logits, remat(**inputs).logits, "logits", kind="compiled_vs_eager")


def test_all_ones_head_mask_equals_none_and_zero_head_gets_no_attention(mlm):
    model, inputs = mlm
    config = model.config
    ones = np.ones((config.num_hidden_layers, config.num_attention_heads), np.float32)
    np.testing.assert_array_equal(model(**inputs, head_mask=ones).logits, model(**inputs).logits)
    mask = ones.copy()
    mask[1, 0] = 0.0
    attentions = model(**inputs, head_mask=mask, output_attentions=True).attentions
    assert np.all(np.asarray(attentions[1][:, 0]) == 0) and np.any(np.asarray(attentions[1][:, 1]) != 0)
