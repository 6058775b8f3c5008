"""The documented examples (seed documentation, /work/shared/seed) and their TF/Flax equivalents, run as
written except for two substitutions: ``from transformers import`` becomes ``from impl_tf import`` /
``from impl_flax import``, and the checkpoint name becomes one of ours. The checkpoints (tiny random
models with the real 30522-token vocabulary, or all-MiniLM-L6-v2 converted to ELECTRA for the base
model) sit in a local huggingface_hub cache with HF_HUB_OFFLINE=1, so ``Cls.from_pretrained("org/name")``
and ``AutoTokenizer.from_pretrained("org/name")`` go through the real hub code path.

The documented outputs ('a nice puppet', 2.64) belong to trained checkpoints; with ours each example
is followed by assertions that hold for any weights: shapes, the decoded span is a span of the input,
the loss equals its recomputation from the logits, causality of the next-token logits, and the TF and
Flax examples on one checkpoint agree within the spec's cross_framework tolerance.
Shape keys: B batch, S sequence, V vocab.
"""
from __future__ import annotations

import numpy as np
import pytest

from electra_core.checkpoint import expected_shapes, save_state
from electra_core.config import ElectraConfig
from electra_core.convert.minilm import convert_minilm, find_minilm_package
from electra_core.tokenizer import ElectraTokenizerFast
from hub_cache import HubCache
from spec import load_spec

TINY = dict(vocab_size=30522, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=24, max_position_embeddings=32)
# hub id -> (reference class whose parameters the checkpoint stores, config overrides); None = MiniLM
CHECKPOINTS = {
    "org/electra-minilm-base": (None, None),
    "org/electra-tiny-squad": ("ElectraForQuestionAnswering", {}),
    "org/electra-tiny-discriminator": ("ElectraForPreTraining", {}),
    "org/electra-tiny-generator": ("ElectraForMaskedLM", {}),
    "org/electra-tiny-decoder": ("ElectraForCausalLM", {"is_decoder": True}),
}


def _random_state(class_name: str, config: ElectraConfig, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in expected_shapes(class_name, config).items():
        values = rng.normal(0.0, 0.3, shape)
        if name.endswith("LayerNorm.weight"):
            values = 1.0 + 0.1 * values
        state[name] = values.astype(np.float32)
    return state


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """An offline hub cache holding every checkpoint of CHECKPOINTS (model + tokenizer files)."""
    root = tmp_path_factory.mktemp("doc-examples")
    tokenizer = ElectraTokenizerFast.from_pretrained(find_minilm_package())
    cache = HubCache(root / "hub-cache")
    directories = {}
    for seed, (repo, (class_name, overrides)) in enumerate(CHECKPOINTS.items()):
        directory = root / repo.split("/")[1]
        if class_name is None:
            convert_minilm(directory)
        else:
            config = ElectraConfig(**TINY, **overrides)
            save_state(directory, _random_state(class_name, config, seed), config)
            tokenizer.save_pretrained(directory)
        cache.add(repo, directory)
        directories[repo] = directory
    with cache.offline():
        yield directories


def run_example(source: str, framework: str, checkpoint: str, documented: str) -> dict:
    """Execute a documented example with the import line and the checkpoint name substituted; return
    its variables."""
    assert f'"{documented}"' in source and "from transformers import" in source
    code = source.replace("from transformers import", f"from impl_{framework} import")
    code = code.replace(f'"{documented}"', f'"{checkpoint}"')
    namespace: dict = {}
    exec(compile(code, f"<doc example {framework}:{checkpoint}>", "exec"), namespace)  # noqa: S102 - doc text
    return namespace


def tolerance(field: str | None = None):
    return load_spec().tolerance("golden", "float32", "cpu", field)


def loss_rank(class_name: str) -> int:
    """Number of axes of the class's loss field in the spec (outputs.yaml; "" = scalar)."""
    field = next(f for f in load_spec().output_of(class_name).fields if f.name == "loss")
    return len(field.shape.split())


def cross_entropy(logits: np.ndarray, target: int) -> float:
    """-log softmax(logits)[target] for one row of logits (V,), in float64."""
    logits = np.asarray(logits, np.float64)
    top = logits.max()
    return float(top + np.log(np.exp(logits - top).sum()) - logits[target])


def assert_cross_framework(tf_value, flax_value, field: str) -> None:
    """Our TF and Flax outputs for the same checkpoint and inputs agree within the spec's tolerance."""
    tol = load_spec().tolerance("cross_framework", "float32", "cpu", field)
    np.testing.assert_allclose(np.asarray(tf_value), np.asarray(flax_value), atol=tol.atol, rtol=tol.rtol,
                               err_msg=f"{field}: TF vs Flax")


# -- TFElectraForQuestionAnswering (documented) and its Flax equivalent --------------------------
TF_QUESTION_ANSWERING = '''
from transformers import AutoTokenizer, TFElectraForQuestionAnswering
import tensorflow as tf
tokenizer = AutoTokenizer.from_pretrained("bhadresh-savani/electra-base-squad2")
model = TFElectraForQuestionAnswering.from_pretrained("bhadresh-savani/electra-base-squad2")
question, text = "Who was Jim Henson?", "Jim Henson was a nice puppet"
inputs = tokenizer(question, text, return_tensors="tf")
outputs = model(**inputs)
answer_start_index = int(tf.math.argmax(outputs.start_logits, axis=-1)[0])
answer_end_index = int(tf.math.argmax(outputs.end_logits, axis=-1)[0])
predict_answer_tokens = inputs.input_ids[0, answer_start_index : answer_end_index + 1]
answer = tokenizer.decode(predict_answer_tokens)
# target is "nice puppet"
target_start_index = tf.constant([11])
target_end_index = tf.constant([12])
outputs = model(**inputs, start_positions=target_start_index, end_positions=target_end_index)
loss = tf.math.reduce_mean(outputs.loss)
rounded = round(float(loss), 2)
'''

FLAX_QUESTION_ANSWERING = '''
from transformers import AutoTokenizer, FlaxElectraForQuestionAnswering
tokenizer = AutoTokenizer.from_pretrained("bhadresh-savani/electra-base-squad2")
model = FlaxElectraForQuestionAnswering.from_pretrained("bhadresh-savani/electra-base-squad2")
question, text = "Who was Jim Henson?", "Jim Henson was a nice puppet"
inputs = tokenizer(question, text, return_tensors="jax")
outputs = model(**inputs)
start_scores = outputs.start_logits
end_scores = outputs.end_logits
'''


@pytest.fixture(scope="module")
def tf_qa(hub):
    return run_example(TF_QUESTION_ANSWERING, "tf", "org/electra-tiny-squad", "bhadresh-savani/electra-base-squad2")


@pytest.fixture(scope="module")
def flax_qa(hub):
    return run_example(FLAX_QUESTION_ANSWERING, "flax", "org/electra-tiny-squad", "bhadresh-savani/electra-base-squad2")


def test_tf_question_answering_example(tf_qa):
    tokenizer, inputs, outputs = tf_qa["tokenizer"], tf_qa["inputs"], tf_qa["outputs"]
    ids = np.asarray(inputs.input_ids)
    assert ids.shape == (1, 14) and np.asarray(outputs.start_logits).shape == (1, 14)
    assert 0 <= tf_qa["answer_start_index"] < 14 and 0 <= tf_qa["answer_end_index"] < 14
    assert tf_qa["answer"] in tokenizer.decode(ids[0]), "the decoded answer is not a span of the input"
    assert tokenizer.decode(ids[0, 11:13]) == "nice puppet"  # the documented target positions
    start, end = np.asarray(outputs.start_logits)[0], np.asarray(outputs.end_logits)[0]
    expected = (cross_entropy(start, 11) + cross_entropy(end, 12)) / 2
    assert np.asarray(outputs.loss).ndim == loss_rank("TFElectraForQuestionAnswering")
    tol = tolerance("loss")
    assert abs(float(tf_qa["loss"]) - expected) <= tol.atol + tol.rtol * abs(expected)


def test_flax_question_answering_equivalent_agrees_with_tf(flax_qa, tf_qa):
    assert np.asarray(flax_qa["start_scores"]).shape == np.asarray(flax_qa["end_scores"]).shape == (1, 14)
    assert_cross_framework(tf_qa["outputs"].start_logits, flax_qa["start_scores"], "start_logits")
    assert_cross_framework(tf_qa["outputs"].end_logits, flax_qa["end_scores"], "end_logits")


# -- FlaxElectraModel (documented) and TFElectraModel ----------------------------------------------
FLAX_MODEL = '''
from transformers import AutoTokenizer, FlaxElectraModel
tokenizer = AutoTokenizer.from_pretrained("google/electra-small-discriminator")
model = FlaxElectraModel.from_pretrained("google/electra-small-discriminator")
inputs = tokenizer("Hello, my dog is cute", return_tensors="jax")
outputs = model(**inputs)
last_hidden_states = outputs.last_hidden_state
'''

TF_MODEL = '''
from transformers import AutoTokenizer, TFElectraModel
import tensorflow as tf
tokenizer = AutoTokenizer.from_pretrained("google/electra-small-discriminator")
model = TFElectraModel.from_pretrained("google/electra-small-discriminator")
inputs = tokenizer("Hello, my dog is cute", return_tensors="tf")
outputs = model(inputs)
last_hidden_states = outputs.last_hidden_state
'''


def test_base_model_examples_agree(hub):
    flax = run_example(FLAX_MODEL, "flax", "org/electra-minilm-base", "google/electra-small-discriminator")
    tf_ns = run_example(TF_MODEL, "tf", "org/electra-minilm-base", "google/electra-small-discriminator")
    hidden = np.asarray(flax["last_hidden_states"])
    assert hidden.shape == (1, 8, 384) and np.isfinite(hidden).all()
    assert_cross_framework(tf_ns["last_hidden_states"], hidden, "last_hidden_state")


# -- FlaxElectraForPreTraining (documented) and TFElectraForPreTraining ----------------------------
FLAX_PRETRAINING = '''
from transformers import AutoTokenizer, FlaxElectraForPreTraining
tokenizer = AutoTokenizer.from_pretrained("google/electra-small-discriminator")
model = FlaxElectraForPreTraining.from_pretrained("google/electra-small-discriminator")
inputs = tokenizer("Hello, my dog is cute", return_tensors="np")
outputs = model(**inputs)
prediction_logits = outputs.logits
'''

TF_PRETRAINING = '''
from transformers import AutoTokenizer, TFElectraForPreTraining
import tensorflow as tf
tokenizer = AutoTokenizer.from_pretrained("google/electra-small-discriminator")
model = TFElectraForPreTraining.from_pretrained("google/electra-small-discriminator")
input_ids = tf.constant(tokenizer.encode("Hello, my dog is cute", add_special_tokens=True))[None, :]
outputs = model(input_ids)
prediction_logits = outputs.logits
'''


def test_pretraining_examples_agree(hub):
    flax = run_example(FLAX_PRETRAINING, "flax", "org/electra-tiny-discriminator", "google/electra-small-discriminator")
    tf_ns = run_example(TF_PRETRAINING, "tf", "org/electra-tiny-discriminator", "google/electra-small-discriminator")
    # one logit per token (B, S): the documented (B, S, V) shape is a documentation slip
    assert np.asarray(flax["prediction_logits"]).shape == flax["inputs"]["input_ids"].shape == (1, 8)
    assert_cross_framework(tf_ns["prediction_logits"], flax["prediction_logits"], "logits")


# -- FlaxElectraForMaskedLM (documented) and TFElectraForMaskedLM with its labels ----------------
FLAX_MASKED_LM = '''
from transformers import AutoTokenizer, FlaxElectraForMaskedLM
tokenizer = AutoTokenizer.from_pretrained("google/electra-small-discriminator")
model = FlaxElectraForMaskedLM.from_pretrained("google/electra-small-discriminator")
inputs = tokenizer("The capital of France is [MASK].", return_tensors="jax")
outputs = model(**inputs)
logits = outputs.logits
'''

TF_MASKED_LM = '''
from transformers import AutoTokenizer, TFElectraForMaskedLM
import tensorflow as tf
tokenizer = AutoTokenizer.from_pretrained("google/electra-small-generator")
model = TFElectraForMaskedLM.from_pretrained("google/electra-small-generator")
inputs = tokenizer("The capital of France is [MASK].", return_tensors="tf")
logits = model(**inputs).logits
mask_token_index = tf.where((inputs.input_ids == tokenizer.mask_token_id)[0])
selected_logits = tf.gather_nd(logits[0], indices=mask_token_index)
predicted_token_id = tf.math.argmax(selected_logits, axis=-1)
predicted = tokenizer.decode(predicted_token_id)
labels = tokenizer("The capital of France is Paris.", return_tensors="tf")["input_ids"]
labels = tf.where(inputs["input_ids"] == tokenizer.mask_token_id, labels, -100)
outputs = model(**inputs, labels=labels)
loss = outputs.loss
'''


def test_flax_masked_lm_example(hub):
    ns = run_example(FLAX_MASKED_LM, "flax", "org/electra-tiny-generator", "google/electra-small-discriminator")
    ids = np.asarray(ns["inputs"]["input_ids"])
    assert np.asarray(ns["logits"]).shape == (1, ids.shape[1], 30522)
    assert ns["tokenizer"].convert_ids_to_tokens(ids[0]).index("[MASK]") == 6


def test_tf_masked_lm_example(hub):
    ns = run_example(TF_MASKED_LM, "tf", "org/electra-tiny-generator", "google/electra-small-generator")
    tokenizer, logits = ns["tokenizer"], np.asarray(ns["logits"])
    position = int(np.asarray(ns["mask_token_index"])[0, 0])
    assert position == 6 and logits.shape == (1, 9, 30522)
    assert ns["predicted"] == tokenizer.decode([int(np.argmax(logits[0, position]))])
    paris = tokenizer.convert_tokens_to_ids("paris")
    expected = cross_entropy(logits[0, position], paris)  # the only position whose label is not -100
    tol = tolerance("loss")
    assert np.asarray(ns["loss"]).ndim == loss_rank("TFElectraForMaskedLM")
    assert abs(float(ns["loss"]) - expected) <= tol.atol + tol.rtol * abs(expected)


# -- FlaxElectraForCausalLM (documented) ----------------------------------------------------------
FLAX_CAUSAL_LM = '''
from transformers import AutoTokenizer, FlaxElectraForCausalLM
tokenizer = AutoTokenizer.from_pretrained("google/electra-small-discriminator")
model = FlaxElectraForCausalLM.from_pretrained("google/electra-small-discriminator")
inputs = tokenizer("Hello, my dog is cute", return_tensors="np")
outputs = model(**inputs)
# retrieve logts for next token
next_token_logits = outputs.logits[:, -1]
'''


TF_CAUSAL_LM = FLAX_CAUSAL_LM.replace("FlaxElectraForCausalLM", "TFElectraForCausalLM").replace('"np"', '"tf"')


@pytest.mark.parametrize("framework,source", [("flax", FLAX_CAUSAL_LM), ("tf", TF_CAUSAL_LM)])
def test_causal_lm_example(hub, framework, source):
    """FlaxElectraForCausalLM as documented; TFElectraForCausalLM is our extension (decision.tf_causal_lm_extension)."""
    ns = run_example(source, framework, "org/electra-tiny-decoder", "google/electra-small-discriminator")
    next_token_logits = np.asarray(ns["next_token_logits"])
    assert next_token_logits.shape == (1, 30522)
    # causal: the logits after the first S-1 tokens do not depend on the last token
    prefix = {k: np.asarray(v)[:, :-1] for k, v in ns["inputs"].items()}
    shorter = np.asarray(ns["model"](**prefix).logits)[:, -1]
    same = load_spec().tolerance("compiled_vs_eager", "float32", "cpu", "logits")  # one implementation vs itself
    np.testing.assert_allclose(shorter, np.asarray(ns["outputs"].logits)[:, -2], atol=same.atol, rtol=same.rtol)
