"""Training through the frameworks' own machinery: Keras ``compile``/``fit`` with the model's own loss
(behaviour.tf.fit) and Flax gradient checkpointing (behaviour.flax.gradient_checkpointing: the same
outputs and gradients as without it). Shape keys: B batch, S sequence."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.tests._helpers import SELF_KIND, build, examples, primary_field, spec_class, thorough
from spec import load_spec

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Keras fit epochs on one fixed batch: enough for a tiny model's loss to fall, few enough to stay cheap
_EPOCHS = 3


def _label_names(class_name: str) -> tuple[str, ...]:
    head = spec_class(class_name).loss
    return tuple(load_spec().raw("losses")["losses"][head]["labels"]) if head else ()


@examples(1)
@given(data=st.data())
def test_tf_fit_lowers_the_loss(check, adapter, caps, class_name, model_cache, data):
    """compile(optimizer) without a loss trains on the model's own loss: fit with the labels inside
    the input dict, then with the labels as y, each lowers the loss on a fixed batch. Under dev/ci
    each class fits once (eagerly), with the placements alternating over the classes; the thorough
    profile fits both placements of every class through Keras' compiled train step."""
    clause = "behaviour.tf.fit"
    if adapter.framework != "tf":
        pytest.skip(f"{clause} binds TF classes only")
    labels = _label_names(class_name)
    if not labels:
        pytest.skip(f"the spec gives {class_name} no loss to fit")
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(0,), labels=True))
    if "choices" in case.dims:  # identical choices would tie their logits whatever the weights: make them differ
        case.inputs["input_ids"][:, :, 0] = np.arange(case.dims["choices"]) % case.config["vocab_size"]
    caps.skip_unless("api:native")  # the test calls the model object itself
    model = model_cache.build(class_name, S.no_dropout(case.config)).native  # fit changes the weights
    model.compile(optimizer="adam", run_eagerly=not thorough())
    features = {k: v for k, v in case.inputs.items() if k not in labels}
    targets = {k: case.inputs[k] for k in labels}
    batch = case.dims["batch"]
    placements = {"labels in the input dict": (dict(case.inputs), None),
                  "labels as y": (features, targets[labels[0]] if len(labels) == 1 else targets)}
    if not thorough():  # dev/ci: one placement per class, alternating over the spec's class order
        order = [c.name for c in load_spec().classes_for("tf")].index(class_name)
        placements = dict([list(placements.items())[order % 2]])
    for where, (x, y) in placements.items():
        try:
            history = model.fit(x, y, epochs=_EPOCHS, batch_size=batch, shuffle=False, verbose=0).history
        except Exception as err:  # noqa: BLE001 - a fit that cannot run is this clause's finding
            check.fail(clause, f"fit with {where} raised {type(err).__name__}: {str(err)[:500]}")
        losses = [float(v) for v in history.get("loss", [])]
        check.equal(len(losses), _EPOCHS, clause=clause, what=f"recorded losses ({where})")
        check.that(all(np.isfinite(losses)) and losses[-1] < losses[0], clause=clause,
                   message=f"fit with {where} did not lower the loss: {losses}")


@examples(1)
@given(data=st.data())
def test_flax_gradient_checkpointing_keeps_outputs_and_gradients(check, adapter, caps, class_name, model_cache, data):
    """enable_gradient_checkpointing() and gradient_checkpointing=True (constructor) give the outputs
    and the parameter gradients (train=True, same dropout key) of the model without it. Each gradient
    is a compilation: dev/ci check enable_gradient_checkpointing() on the bare encoder (where the
    checkpointed layers are); the thorough profile checks both routes on every class."""
    clause = "behaviour.flax.gradient_checkpointing"
    if adapter.framework != "flax":
        pytest.skip(f"{clause} binds Flax classes only")
    if not (thorough() or class_name.endswith("ElectraModel")):
        pytest.skip("gradient checkpointing is checked on the bare encoder only outside the thorough profile")
    import jax
    import jax.numpy as jnp
    from flax.traverse_util import flatten_dict

    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(0,), shapes=S.SHAPE_BUCKETS[:1]))
    caps.skip_unless("api:native")  # the test calls the model object itself
    plain = build(model_cache, class_name, case.config).native
    by_method = model_cache.build(class_name, case.config).native
    by_method.enable_gradient_checkpointing()
    routes = {"enable_gradient_checkpointing()": by_method}
    if thorough():
        routes["gradient_checkpointing=True"] = type(plain)(plain.config, seed=0, gradient_checkpointing=True)
    field = primary_field(class_name)
    key = jax.random.PRNGKey(data.draw(st.integers(0, 2**16), label="dropout key"))

    def objective(model):
        def loss(params):
            out = getattr(model(**case.inputs, params=params, train=True, dropout_rng=key), field)
            return jnp.mean(jnp.square(out.astype(jnp.float32))), out
        return loss

    (_, want_out), want_grads = jax.value_and_grad(objective(plain), has_aux=True)(plain.params)
    want_grads = flatten_dict(dict(want_grads))
    for how, model in routes.items():
        (_, out), grads = jax.value_and_grad(objective(model), has_aux=True)(plain.params)
        check.allclose(out, want_out, clause=clause, kind=SELF_KIND, field=field)
        grads = flatten_dict(dict(grads))
        check.equal(sorted(grads), sorted(want_grads), clause=clause, what=f"gradient tree with {how}")
        for path, value in want_grads.items():
            check.allclose(grads[path], value, clause=clause, kind=SELF_KIND, field=None)
