"""spec/data/params.yaml: schema validation and agreement with the class list of classes.yaml."""
import copy

import pytest

from electra_core import ElectraConfig
from electra_core.checkpoint import expected_shapes
from electra_core.checkpoint.names import pt_name_to_flax_path, pt_to_tf_name
from electra_core.checkpoint.param_spec import params_data
from spec import load_spec
from spec.loader import read_data, schema_for, validation_errors


def test_params_yaml_matches_its_schema():
    assert validation_errors(read_data("params"), schema_for("params")) == []


@pytest.mark.parametrize("breakage", ["three_dim_shape", "unknown_framework", "missing_tied"])
def test_schema_rejects_broken_params_data(breakage):
    data = copy.deepcopy(read_data("params"))
    if breakage == "three_dim_shape":
        data["modules"]["base"][0]["shape"] = ["vocab_size", "embedding_size", 1]
    elif breakage == "unknown_framework":
        data["classes"]["ElectraModel"]["framework"] = "mxnet"
    else:
        del data["tied"]
    assert validation_errors(data, schema_for("params")) != []


def test_every_spec_class_is_described_with_the_same_base_prefix():
    classes = params_data()["classes"]
    for spec_class in load_spec().classes.values():
        assert spec_class.name in classes, spec_class.name
        prefixed = classes[spec_class.name]["base_prefixed"]
        assert (spec_class.param_prefix or "") == (params_data()["base_prefix"] if prefixed else ""), spec_class.name


def test_every_head_module_is_used_by_a_class_and_every_class_module_exists():
    modules = set(params_data()["modules"])
    used = {h for c in params_data()["classes"].values() for h in c["heads"]} | {"base"}
    assert used == modules


def test_every_parameter_name_maps_to_flax_and_tf():
    config = ElectraConfig(vocab_size=32, embedding_size=8, hidden_size=12, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=16, max_position_embeddings=16,
                           is_decoder=True, add_cross_attention=True, tie_word_embeddings=False,
                           position_embedding_type="relative_key")
    for class_name in params_data()["classes"]:
        for name in expected_shapes(class_name, config):
            path, _ = pt_name_to_flax_path(name)
            assert path[:-1] == tuple(name.split(".")[:-1])
            assert pt_to_tf_name(name, "scope").endswith(":0")


def test_unknown_class_is_rejected_by_name():
    with pytest.raises(ValueError, match="FlaxElectraForEverything"):
        expected_shapes("FlaxElectraForEverything", ElectraConfig())
