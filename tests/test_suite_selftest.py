"""Self-test of the conformance suite: deliberately broken variants of impl_tf and impl_flax (tests/broken/) must
each be flagged, with the clause id that names the defect, by the conformance test that owns it.

Each variant runs in-process (pytester.runpytest) on one class and the test functions that matter
(-k), and its patches are undone afterwards. Keep adding a variant whenever a real defect is found.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("flax")

REPO = Path(__file__).resolve().parents[1]

#: (variant: a class of tests/broken/tf_variants.py, or flax:<class> of flax_variants.py; conformance test
#: module; -k selection; the clause it must be flagged with)
VARIANTS = [
    ("TanhGelu", "test_semantics", "test_sequence_summary_options and TFElectraForMultipleChoice",
     "ElectraConfig.field.summary_activation"),
    ("TanhGelu", "test_architecture", "test_encoder_layers_recomputed and TFElectraModel", "activation.gelu"),
    ("QuickGeluAsSilu", "test_architecture", "test_activation_formulas and quick_gelu", "activation.quick_gelu"),
    ("LayerNormEpsIgnored", "test_semantics", "test_encoder_input_is_the_embedding_layer and TFElectraModel",
     "ElectraConfig.field.layer_norm_eps"),
    ("PaddingMaskIgnored", "test_invariances", "test_right_padding_changes_nothing and TFElectraModel",
     "behaviour.padding_invariance"),
    ("TokenTypesDefaultOnes", "test_defaults", "test_omitted_tensor_equals_documented_default and TFElectraModel",
     "TFElectraModel.call.default.token_type_ids"),
    ("PositionsOffByOne", "test_defaults", "test_omitted_tensor_equals_documented_default and TFElectraModel",
     "TFElectraModel.call.default.position_ids"),
    ("CachePositionsNotOffset", "test_semantics", "test_decoding_with_cache_equals_full_pass and TFElectraForCausalLM",
     "behaviour.decoding_cache"),
    ("IgnoredLabelsCounted", "test_losses", "test_ignored_labels_do_not_count and TFElectraForMaskedLM",
     "loss.ignore_index"),
    ("DropoutInInference", "test_invariances", "test_dropout_only_in_training and TFElectraModel",
     "behaviour.tf.training_flag"),
    ("PrepareInputsMissing", "test_signatures", "test_public_methods and TFElectraForCausalLM",
     "TFElectraForCausalLM.method.prepare_inputs_for_generation"),
    ("flax:TanhGelu", "test_architecture", "test_encoder_layers_recomputed and FlaxElectraModel", "activation.gelu"),
    ("flax:TokenTypesDefaultOnes", "test_defaults",
     "test_omitted_tensor_equals_documented_default and FlaxElectraModel",
     "FlaxElectraModel.call.default.token_type_ids"),
    ("flax:PaddingMaskIgnored", "test_semantics",
     "test_attention_rows_sum_to_one_and_skip_masked_keys and FlaxElectraModel",
     "behaviour.attention_rows"),
    ("flax:HalfCheckpointKept", "test_persistence", "test_half_precision_checkpoint_loads_as_float32",
     "files.dtype_on_load"),
    ("flax:PerHeadMaskFirstLayerOnly", "test_combinations", "pairwise: per_head_two_layers",
     "architecture.feed_forward"),
    ("flax:SavedParamsUnchecked", "test_persistence", "test_flax_save_refuses_params_that_do_not_fit and missing",
     "error.save.params_mismatch"),
    ("flax:IntegerParamsSaved", "test_persistence", "test_flax_save_refuses_params_that_do_not_fit and int32",
     "error.save.params_dtype"),
    ("TupleDropsCache", "test_combinations", "pairwise: decoder_tuple_form", "behaviour.return_tuple"),
    ("ServingDropsTokenTypes", "test_invariances", "test_tf_saved_model_serving_reproduces_eager and TFElectraModel",
     "behaviour.tf.saved_model"),
    ("WordIdsIndexRenamed", "test_tokenizer", "test_golden_tokenizer_case and word_ids",
     "tokenizer.method.word_ids.batch_index"),
    ("SpecialTokenCountIgnoresPair", "test_tokenizer", "test_golden_tokenizer_case and num_special_tokens_to_add",
     "tokenizer.method.num_special_tokens_to_add.pair"),
    ("ResizeDropsPadRow", "test_params", "test_tf_resize_refuses and pad_token_id", "error.resize.new_num_tokens"),
    ("CacheKeepsCrossAttention", "test_numerics", "test_matches_golden and cross_attention_cache and ElectraModel",
     "TFBaseModelOutputWithPastAndCrossAttentions.field.past_key_values"),
    ("RaggedListUnnamed", "test_errors", "test_bad_input_raises and TFElectraModel and input.ragged",
     "error.input.ragged"),
    ("ComplexHeadMaskAccepted", "test_errors", "test_bad_input_raises and TFElectraModel and float_inputs",
     "error.float_inputs.dtype"),
    ("RelativeLengthUncheckedWithPositions", "test_errors", "test_bad_input_raises and TFElectraModel and beyond_distances",
     "error.sequence.beyond_distances"),
    ("HeaderReadBeforeItsCheck", "test_hostile_files", "test_safetensors_header_longer_than_the_file",
     "files.load.shapes_first"),
    ("DictWinsOverKeyword", "test_errors", "test_bad_input_raises and TFElectraModel and given_twice",
     "error.input.given_twice"),
    ("UnusedWeightsUnlisted", "test_persistence", "test_head_from_base and TFElectraModel", "files.head_from_base"),
    ("flax:InitCacheUnchecked", "test_errors", "test_flax_init_cache_refuses_bad_arguments and max_length_zero",
     "error.init_cache.arguments"),
    ("flax:IdsAtVocabSizeAccepted", "test_errors",
     "test_bad_input_raises and FlaxElectraModel and input_ids.out_of_range", "error.input_ids.out_of_range"),
]


#: calls of the pairwise selection (conformance.combinations.planned) a planted fault shows in: the first one
#: with the features is run, whatever number the selection gives it
PAIRWISE_CALLS = {
    "per_head_two_layers": ("flax", lambda levels: levels["head_mask"] in ("per_head", "per_head_fractional")
                            and levels["two_or_more_layers"] and levels["past_key_values"] == "off"),
    "decoder_tuple_form": ("tf", lambda levels: levels["is_decoder"] and levels["return_dict"]
                           and levels["past_key_values"] == "off"),
}


def _selection(selection: str) -> str:
    """The -k expression of a variant: as written, or ``pairwise: NAME``, the test of the first planned call
    that PAIRWISE_CALLS[NAME] accepts (in a class whose output carries its fields)."""
    if not selection.startswith("pairwise: "):
        return selection
    from conformance import combinations as C

    framework, accepts = PAIRWISE_CALLS[selection.split(": ", 1)[1]]
    k, row = next((k, r) for k, r in enumerate(C.planned(framework).rows)
                  if accepts(dict(r.levels)) and r.class_name.endswith(("ElectraModel", "CausalLM")))
    return f"test_feature_pairs_recomputed and {k + 1:02d}-{row.class_name}"


def failed_clauses(report_path: Path) -> set[str]:
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return {c for r in report["results"] if r["outcome"] == "failed" for c in r["failed_clauses"]}


@pytest.fixture(scope="module", autouse=True)
def _imported_once():
    """Import the libraries the in-process runs use, so that pytester's sys.modules snapshot keeps a
    single copy of each (a re-imported hypothesis or TF would not recognise its own objects). The
    conformance test modules themselves are imported by each run, after it loads its profile."""
    import importlib
    import sys

    sys.path.insert(0, str(REPO))
    for name in ("hypothesis.strategies", "hypothesis.extra.numpy", "conformance.plugin", "conformance.strategies",
                 "tests.broken.tf_variants", "tests.broken.flax_variants", "impl_tf", "impl_flax"):
        importlib.import_module(name)
    yield
    sys.path.remove(str(REPO))


@pytest.mark.parametrize("variant,module,selection,clause", VARIANTS,
                         ids=[f"{v[0].replace(':', '-')}-{v[1][5:]}" for v in VARIANTS])
def test_broken_variant_is_flagged_with_its_clause(pytester, variant, module, selection, clause):
    from tests.broken.patching import undo_all

    report = pytester.path / "report.json"
    try:
        framework, _, name = variant.rpartition(":")
        pytester.runpytest("-p", "no:cacheprovider", "--pyargs", f"conformance.tests.{module}",
                           "--impl", f"tests.broken.{framework or 'tf'}_variants:{name}", "--devices", "cpu",
                           "--dtypes", "float32", "--conformance-profile", "ci", "-k", _selection(selection),
                           "--conformance-report", str(report))
    finally:
        undo_all()
    assert report.exists(), f"{variant}: the conformance run wrote no report"
    flagged = failed_clauses(report)
    assert clause in flagged, f"{variant} was not flagged with {clause}; failed clauses: {sorted(flagged) or 'none'}"


#: (variant, -k selection, clause) of the faults only a device mesh shows: they need the virtual devices before
#: JAX or TF starts, so each runs in a subprocess (about 40 s for Flax, 90 s for TF)
MESH_VARIANTS = [
    ("flax:LossMeanOfShardMeans", "loss_and_gradients and data", "distribution.loss"),
    ("OwnLossesPerReplica", "own_losses and data", "distribution.own_losses"),
]


@pytest.mark.slow
@pytest.mark.parametrize("variant,selection,clause", MESH_VARIANTS, ids=[v[0].replace(":", "-") for v in MESH_VARIANTS])
def test_sharding_fault_is_flagged_by_the_distribution_family(pytester, monkeypatch, variant, selection, clause):
    """A planted fault of a split run (flax:LossMeanOfShardMeans: the loss reduced per data shard, then
    averaged; OwnLossesPerReplica: the model's own losses counted whole on every replica) is flagged by the
    distribution family on an 8-device CPU mesh."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    report = pytester.path / "report.json"
    framework, _, name = variant.rpartition(":")
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance.tests.test_distribution",
        "--impl", f"tests.broken.{framework or 'tf'}_variants:{name}", "--devices", "cpu:8", "--dtypes", "float32",
        "--conformance-profile", "ci", "-k", selection, "--min-numeric", "0",
        "--conformance-report", str(report), timeout=600)
    assert report.exists(), "the conformance run wrote no report"
    flagged = failed_clauses(report)
    assert clause in flagged, f"{variant} was not flagged with {clause}; failed clauses: {sorted(flagged)}"
