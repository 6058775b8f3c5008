"""from_pretrained keywords (issue 14, items 8-9; clauses error.loader.keyword, error.loader.subfolder):
every hub request carries the caller's token, revision, cache_dir, local_files_only, proxies,
force_download and subfolder; loader keywords are honoured or rejected; only config fields override the
config; anything else is a TypeError naming it and never reaches config.json. Offline, through a local
huggingface_hub cache (tests/hub_cache.py) and a recording wrapper around hf_hub_download."""
from __future__ import annotations

import json

import huggingface_hub
import numpy as np
import pytest

from electra_core.config import ElectraConfig
from electra_core.hub import CheckpointNotFoundError
from hub_cache import HubCache

TINY = dict(vocab_size=32, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=20, max_position_embeddings=16)
IDS = np.array([[2, 5, 7, 3]], np.int32)


@pytest.fixture(scope="module", params=["flax", "tf"])
def saved(request, tmp_path_factory):
    """(framework, class, model, checkpoint dir holding the model in sub/ and at the top)."""
    if request.param == "flax":
        from impl_flax import FlaxElectraForSequenceClassification as cls
    else:
        from impl_tf import TFElectraForSequenceClassification as cls
    model = cls(ElectraConfig(**TINY))
    root = tmp_path_factory.mktemp(f"ckpt-{request.param}")
    model.save_pretrained(root)
    model.save_pretrained(root / "sub")
    return request.param, cls, model, root


def _logits(model):
    return np.asarray(model(IDS).logits)


# -- item 9: unknown and loader keywords -------------------------------------------------------------
@pytest.mark.parametrize("keyword,value", [("trust_remote_code", True), ("use_auth_token", "x"), ("foo", 1),
                                           ("mirror", "cn"), ("output_loading_info", True),
                                           ("architectures", ["X"])])
def test_unknown_keyword_is_a_type_error_naming_it(saved, keyword, value):
    _, cls, _, root = saved
    with pytest.raises(TypeError, match=keyword):
        cls.from_pretrained(root, **{keyword: value})
    with pytest.raises(TypeError, match=keyword):
        ElectraConfig.from_pretrained(root, **{keyword: value})


def test_loader_keywords_never_reach_config_json(saved, tmp_path):
    _, cls, _, root = saved
    model = cls.from_pretrained(root, force_download=False, use_safetensors=True, from_pt=True,
                                token=None, proxies=None, hidden_dropout_prob=0.0)
    model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert not {"force_download", "use_safetensors", "from_pt", "token", "proxies", "subfolder"} & set(written)
    assert written["hidden_dropout_prob"] == 0.0  # a config field does override


@pytest.mark.parametrize("subfolder", ["../../etc", "..", "sub/../../x", "/etc", "\\\\server\\share", "C:\\x"])
def test_subfolder_outside_the_checkpoint_is_rejected(saved, subfolder):
    _, cls, _, root = saved
    with pytest.raises(ValueError, match="subfolder"):
        cls.from_pretrained(root, subfolder=subfolder)
    with pytest.raises(ValueError, match="subfolder"):
        cls.from_pretrained("org/name", subfolder=subfolder, local_files_only=True)


def test_subfolder_through_a_link_out_of_the_folder_is_rejected(saved, tmp_path):
    _, cls, _, root = saved
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "escape").symlink_to(root / "sub")
    with pytest.raises(ValueError, match="outside the checkpoint folder"):
        cls.from_pretrained(folder, subfolder="escape")


def test_subfolder_inside_the_checkpoint_is_honoured(saved):
    _, cls, model, root = saved
    np.testing.assert_array_equal(_logits(cls.from_pretrained(root, subfolder="sub")), _logits(model))
    with pytest.raises(CheckpointNotFoundError, match="subfolder 'absent'"):
        cls.from_pretrained(root, subfolder="absent")


def test_use_safetensors_selects_the_files_read(saved, tmp_path):
    framework, cls, model, _ = saved
    model.save_pretrained(tmp_path, safe_serialization=True)  # model.safetensors only
    np.testing.assert_array_equal(_logits(cls.from_pretrained(tmp_path, use_safetensors=True)), _logits(model))
    with pytest.raises(CheckpointNotFoundError, match="msgpack" if framework == "flax" else "h5"):
        cls.from_pretrained(tmp_path, use_safetensors=False)
    with pytest.raises(ValueError, match="from_pt"):
        cls.from_pretrained(tmp_path, from_pt=True, use_safetensors=False)
    with pytest.raises(TypeError, match="use_safetensors"):
        cls.from_pretrained(tmp_path, use_safetensors="yes")


def test_num_labels_override_rebuilds_labels(saved):
    _, cls, _, root = saved
    model = cls.from_pretrained(root, num_labels=3, ignore_mismatched_sizes=True)
    assert model.config.num_labels == 3 and len(model.config.id2label) == 3
    assert _logits(model).shape == (1, 3)


# -- item 8: every hub request carries the caller's options -------------------------------------------
@pytest.fixture
def recorded(monkeypatch):
    """Calls of huggingface_hub.hf_hub_download (their keyword arguments), passed on to the real one."""
    calls = []
    real = huggingface_hub.hf_hub_download

    def recording(repo_id, filename, **kwargs):
        calls.append(dict(kwargs, repo_id=repo_id, filename=filename))
        return real(repo_id, filename, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", recording)
    return calls


def test_every_hub_request_carries_token_revision_cache_and_proxies(saved, tmp_path, recorded):
    _, cls, model, root = saved
    cache = HubCache(tmp_path / "hub")
    cache.add("org/private", root, revision="v1")
    proxies = {"https": "http://proxy.invalid:1"}
    with cache.offline():
        loaded = cls.from_pretrained("org/private", token="hf_secret", revision="v1", cache_dir=cache.root,
                                     local_files_only=True, proxies=proxies)
    np.testing.assert_array_equal(_logits(loaded), _logits(model))
    assert {c["filename"] for c in recorded} >= {"config.json"} and len(recorded) >= 2  # config + weights
    for call in recorded:
        assert call["token"] == "hf_secret", call
        assert call["revision"] == "v1" and call["proxies"] == proxies and call["local_files_only"] is True, call
        assert str(call["cache_dir"]) == str(cache.root), call
    assert "token" not in loaded.config.to_dict()  # the finding: TF stored the token on the config


def test_hub_subfolder_and_force_download_reach_every_request(saved, monkeypatch):
    _, cls, model, root = saved
    calls = []

    def fake(repo_id, filename, **kwargs):
        calls.append(dict(kwargs, filename=filename))
        path = root / kwargs["subfolder"] / filename
        if not path.is_file():
            from huggingface_hub.errors import EntryNotFoundError

            raise EntryNotFoundError(f"{filename} absent")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    loaded = cls.from_pretrained("org/name", subfolder="sub", force_download=True, token="t")
    np.testing.assert_array_equal(_logits(loaded), _logits(model))
    assert calls and all(c["subfolder"] == "sub" and c["force_download"] and c["token"] == "t" for c in calls)


def test_config_from_pretrained_carries_the_options_too(saved, monkeypatch):
    _, _, _, root = saved
    calls = []

    def fake(repo_id, filename, **kwargs):
        calls.append(kwargs)
        return str(root / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    config = ElectraConfig.from_pretrained("org/name", token="t", revision="r", proxies={"http": "p"},
                                           output_hidden_states=True)
    assert config.output_hidden_states and calls == [dict(subfolder=None, revision="r", cache_dir=None,
                                                          local_files_only=False, token="t",
                                                          proxies={"http": "p"}, force_download=False)]
