"""jax.jit: the model's own call is jitted once per input shapes and flags; an outer jax.jit over a
function of the params gives the eager outputs (behaviour.flax.jit); dropout follows the rng
(behaviour.flax.dropout); determinism."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax_helpers import assert_close, build, inputs_for, tiny_config


@pytest.fixture(scope="module")
def qa():
    # an epsilon no other test uses: the compile cache is shared by equal modules, so this model's
    # trace count starts from zero whatever ran before
    config = tiny_config("FlaxElectraForQuestionAnswering", layer_norm_eps=3.25e-12)
    return build("FlaxElectraForQuestionAnswering", config), inputs_for("FlaxElectraForQuestionAnswering", config)


def test_compiles_once_per_input_shape_and_flags(qa):
    model, inputs = qa
    start = model.trace_count
    model(**inputs)
    model(**{k: v + 0 for k, v in inputs.items()})  # new values, same shapes
    assert model.trace_count == start + 1
    model(**{k: v[:, :4] for k, v in inputs.items()})  # new sequence length
    assert model.trace_count == start + 2
    model(**inputs, output_attentions=True)  # new flags
    assert model.trace_count == start + 3
    model(**inputs, output_attentions=True)
    assert model.trace_count == start + 3
    # omitted inputs get their defaults inside the compiled call: one more program for this set of
    # given inputs, then no more
    model(inputs["input_ids"])
    model(inputs["input_ids"] + 0)
    assert model.trace_count == start + 4


def test_jitted_call_equals_eager_call(qa):
    model, inputs = qa
    compiled = model(**inputs, output_hidden_states=True)
    with jax.disable_jit():
        eager = model(**inputs, output_hidden_states=True)
    for name in ("start_logits", "end_logits"):
        assert_close(compiled[name], eager[name], name, kind="compiled_vs_eager")
    for a, b in zip(compiled.hidden_states, eager.hidden_states):
        assert_close(a, b, "hidden_states", kind="compiled_vs_eager")


def test_outer_jit_over_params_and_inputs_equals_eager(qa):
    model, inputs = qa

    @jax.jit
    def run(params, ids, mask):
        return model(ids, attention_mask=mask, token_type_ids=inputs["token_type_ids"], params=params)

    out = run(model.params, jnp.asarray(inputs["input_ids"]), jnp.asarray(inputs["attention_mask"]))
    assert type(out).__name__ == "FlaxQuestionAnsweringModelOutput"  # output classes are pytrees
    eager = model(**inputs)
    assert_close(out.start_logits, eager.start_logits, "start_logits", kind="compiled_vs_eager")


def test_inference_is_deterministic(qa):
    model, inputs = qa
    np.testing.assert_array_equal(model(**inputs).start_logits, model(**inputs).start_logits)


def test_dropout_follows_the_rng_and_only_with_train(qa):
    model, inputs = qa
    key, other = jax.random.PRNGKey(0), jax.random.PRNGKey(1)
    a = model(**inputs, train=True, dropout_rng=key).start_logits
    b = model(**inputs, train=True, dropout_rng=key).start_logits
    c = model(**inputs, train=True, dropout_rng=other).start_logits
    plain = model(**inputs).start_logits
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, plain)
    np.testing.assert_array_equal(model(**inputs, dropout_rng=key).start_logits, plain)


@pytest.mark.slow  # gradients through the model are also exercised by test_flax_losses' optax steps
def test_grad_through_the_jitted_call_is_finite(qa):
    model, inputs = qa

    def loss(params):
        return jnp.mean(model(**inputs, params=params, train=True, dropout_rng=jax.random.PRNGKey(0)).start_logits ** 2)

    grads = jax.jit(jax.grad(loss))(model.params)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
    assert any(np.abs(np.asarray(g)).max() > 0 for g in leaves)


def test_equal_models_share_the_compile_cache():
    config = tiny_config("FlaxElectraModel", layer_norm_eps=4.5e-12)  # unused elsewhere: counts start at zero
    first, second = build("FlaxElectraModel", config), build("FlaxElectraModel", config)
    ids = np.array([[1, 2, 3]], np.int32)
    first(ids)
    assert first.trace_count == 1
    second(ids, params=first.params)
    assert second.trace_count == 1  # no new trace: same module, same shapes
    other = build("FlaxElectraModel", tiny_config("FlaxElectraModel", layer_norm_eps=5.5e-12))
    other(ids)
    assert other.trace_count == 1 and first.trace_count == 1  # a different config compiles on its own
