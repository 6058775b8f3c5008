"""Bad call inputs raise the errors of errors.yaml on the host before tracing, naming the problem;
never NaN output."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from flax_helpers import build, inputs_for, tiny_config
from spec import load_spec

SPEC = load_spec()


def expect(error_id: str, **fill):
    """pytest.raises for the clause's exception with every message fragment filled in."""
    clause = SPEC.errors[error_id]
    exception = {"ValueError": ValueError, "TypeError": TypeError}[clause.exception]
    fragments = [f.format(**fill) for f in clause.message]
    return exception, fragments


def check(error_id, call, **fill):
    exception, fragments = expect(error_id, **fill)
    with pytest.raises(exception) as info:
        call()
    message = str(info.value).lower()
    for fragment in fragments:
        assert fragment.lower() in message, (fragment, message)


@pytest.fixture(scope="module")
def model():
    return build("FlaxElectraForTokenClassification")


@pytest.fixture(scope="module")
def decoder():
    return build("FlaxElectraForCausalLM", tiny_config("FlaxElectraForCausalLM", add_cross_attention=True))


IDS = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize("bad", [-1, 32, 1000])
def test_input_ids_out_of_range(model, bad):
    ids = IDS.copy()
    ids[1, 2] = bad
    check("error.input_ids.out_of_range", lambda: model(ids), value=bad, vocab_size=32)


def test_token_type_ids_out_of_range(model):
    check("error.token_type_ids.out_of_range", lambda: model(IDS, token_type_ids=np.full_like(IDS, 2)),
          value=2, type_vocab_size=2)


def test_position_ids_out_of_range(model):
    check("error.position_ids.out_of_range", lambda: model(IDS, position_ids=np.full_like(IDS, 16)),
          value=16, max_position_embeddings=16)


def test_sequence_longer_than_the_position_table(model):
    ids = np.ones((1, 17), int)
    check("error.sequence.too_long", lambda: model(ids), actual_length=17, max_position_embeddings=16)


def test_sequence_too_long_counting_the_cache(decoder):
    cache = decoder.init_cache(1, 20)
    first = decoder(np.ones((1, 12), int), past_key_values=cache)
    check("error.sequence.too_long", lambda: decoder(np.ones((1, 5), int), past_key_values=first.past_key_values),
          actual_length=17, max_position_embeddings=16)


@pytest.mark.parametrize("arg", ["attention_mask", "token_type_ids", "position_ids"])
def test_mismatched_shapes(model, arg):
    bad = np.ones((2, 3), int)
    check("error.shape.mismatch", lambda: model(IDS, **{arg: bad}), arg=arg, expected=(2, 4), actual=(2, 3))


def test_wrong_rank(model):
    check("error.input_ids.rank", lambda: model(IDS[0]), arg="input_ids", expected="(batch, seq)", actual=(4,))
    mc = build("FlaxElectraForMultipleChoice", _do_init=False)
    check("error.input_ids.rank", lambda: mc(IDS, params={}), arg="input_ids", expected="(batch, choices, seq)",
          actual=(2, 4))


@pytest.mark.parametrize("arg", ["input_ids", "token_type_ids", "position_ids"])
def test_non_integer_ids(model, arg):
    kwargs = {"input_ids": IDS, arg: IDS.astype(np.float32)}
    check("error.input_ids.dtype", lambda: model(**kwargs), arg=arg, actual_dtype="float32")


@pytest.mark.parametrize("shape", [(3,), (2, 3), (1, 2, 2)])
def test_head_mask_shape(model, shape):
    check("error.head_mask.shape", lambda: model(IDS, head_mask=np.ones(shape)), expected=(2, 2), actual=shape)
    check("error.head_mask.shape", lambda: model(IDS, head_mask=np.ones(shape)), expected=(2,), actual=shape)


def test_encoder_hidden_states_width_and_batch(decoder):
    check("error.encoder_hidden_states.shape", lambda: decoder(IDS, encoder_hidden_states=np.zeros((2, 3, 8))),
          arg="encoder_hidden_states", expected=(2, 3, 16), actual=(2, 3, 8))
    check("error.encoder_hidden_states.shape", lambda: decoder(IDS, encoder_hidden_states=np.zeros((1, 3, 16))),
          arg="encoder_hidden_states", expected=(2, 3, 16), actual=(1, 3, 16))
    check("error.encoder_hidden_states.shape",
          lambda: decoder(IDS, encoder_hidden_states=np.zeros((2, 3, 16)), encoder_attention_mask=np.ones((2, 4))),
          arg="encoder_attention_mask", expected=(2, 3), actual=(2, 4))


def test_cache_from_another_batch_or_model_is_rejected(decoder):
    cache = decoder.init_cache(3, 8)
    check("error.past_key_values.shape", lambda: decoder(IDS, past_key_values=cache), expected=3, actual=2)
    other = build("FlaxElectraForCausalLM", tiny_config("FlaxElectraForCausalLM", num_hidden_layers=1))
    with pytest.raises(ValueError, match="past_key_values"):
        decoder(IDS, past_key_values=other.init_cache(2, 8))
    with pytest.raises(ValueError, match="past_key_values"):
        decoder(IDS, past_key_values={"not": "a cache"})


def test_cache_overflow(decoder):
    cache = decoder.init_cache(2, 6)
    check("error.cache.overflow", lambda: decoder(np.ones((2, 7), int), past_key_values=cache),
          max_length=6, actual_length=7)
    step = decoder(np.ones((2, 4), int), past_key_values=cache).past_key_values
    check("error.cache.overflow", lambda: decoder(np.ones((2, 3), int), past_key_values=step),
          max_length=6, actual_length=7)


def test_train_without_dropout_rng(model):
    check("error.dropout_rng.missing", lambda: model(IDS, train=True))
    quiet = build("FlaxElectraModel", tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    assert quiet(IDS, train=True).last_hidden_state.shape == (2, 4, 16)  # nothing to drop: no rng needed


def test_errors_are_raised_before_tracing(model):
    traces = model.trace_count
    with pytest.raises(ValueError):
        model(np.full((2, 4), 99))
    assert model.trace_count == traces


def test_shape_checks_still_run_under_an_outer_jit(model):
    @jax.jit
    def run(ids):
        return model(ids, token_type_ids=np.zeros((2, 3), int)).logits

    with pytest.raises(ValueError, match=r"token_type_ids.*\(2, 3\).*\(2, 4\)"):
        run(IDS)


def test_valid_extreme_ids_give_finite_outputs(model):
    ids = np.array([[0, 31, 0, 31]])
    out = model(ids, token_type_ids=np.array([[0, 1, 1, 0]]), position_ids=np.array([[0, 15, 7, 1]]))
    assert np.isfinite(np.asarray(out.logits)).all()
