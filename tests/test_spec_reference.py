"""classes.yaml against the real signatures of transformers' TF and Flax ELECTRA classes (the reference
package). Differences are allowed only where decisions.yaml records them."""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest

from spec import load_spec

pytestmark = [pytest.mark.reference, pytest.mark.slow]  # ~1 min: imports TF and JAX
S = load_spec()
KINDS = {inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
         inspect.Parameter.KEYWORD_ONLY: "keyword_only", inspect.Parameter.VAR_POSITIONAL: "var_positional",
         inspect.Parameter.VAR_KEYWORD: "var_keyword"}

_DUMP = """
import inspect, json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import transformers
out = {}
for name in sys.argv[1:]:
    cls = getattr(transformers, name, None)
    if cls is None:
        continue
    method = cls.call if name.startswith("TF") else cls.__call__
    out[name] = {part: [(p.name, int(p.kind), p.default is inspect.Parameter.empty)
                        for p in inspect.signature(fn).parameters.values() if p.name != "self"]
                 for part, fn in (("init", cls.__init__), ("call", method))}
import dataclasses, importlib
fields = {}
for mod in ("modeling_tf_outputs", "modeling_flax_outputs", "models.electra.modeling_tf_electra",
            "models.electra.modeling_flax_electra"):
    m = importlib.import_module("transformers." + mod)
    for cname in dir(m):
        obj = getattr(m, cname)
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and cname.endswith(("Output", "Attentions")):
            fields[cname] = [f.name for f in dataclasses.fields(obj)]
print(json.dumps({"classes": out, "outputs": fields}))
"""


@pytest.fixture(scope="module")
def real_signatures():
    pytest.importorskip("transformers")
    names = list(S.classes)
    # one subprocess: transformers' TF classes need tf-keras, which must not leak into this process
    proc = subprocess.run([sys.executable, "-c", _DUMP, *names], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def real_classes(real_signatures):
    return real_signatures["classes"]


def _kind(code: int) -> str:
    return KINDS[inspect._ParameterKind(code)]


@pytest.mark.parametrize("name", [c.name for c in S.classes.values() if not c.extension])
def test_call_signature_matches_the_reference(real_classes, name):
    real = real_classes[name]["call"]
    decided = {cid for d in S.decisions.values() for cid in d.affects}
    # an argument the spec adds on purpose (e.g. TFElectraForPreTraining labels) cites a decision
    spec = [p for p in S.classes[name].call if p.name in {n for n, _, _ in real} or p.id not in decided]
    assert [n for n, _, _ in real] == [p.name for p in spec]
    assert [_kind(k) for _, k, _ in real] == [p.kind for p in spec]
    assert [req for _, _, req in real] == [p.required for p in spec]


@pytest.mark.parametrize("name", [c.name for c in S.classes.values() if not c.extension])
def test_constructor_matches_the_reference(real_classes, name):
    real = [(n, _kind(k)) for n, k, _ in real_classes[name]["init"]]
    if name.startswith("TF"):  # decision.tf_init_signature: an unused *inputs is optional
        assert "decision.tf_init_signature" in S.decisions
        real = [r for r in real if r != ("inputs", "var_positional")]
    assert real == [(p.name, p.kind) for p in S.classes[name].constructor]


def test_the_extension_is_absent_from_the_reference(real_classes):
    extensions = [c.name for c in S.classes.values() if c.extension]
    assert extensions == ["TFElectraForCausalLM"]
    assert not set(extensions) & set(real_classes)


@pytest.mark.parametrize("name", sorted(S.outputs))
def test_output_fields_match_the_reference_order(real_signatures, name):
    real = real_signatures["outputs"][name]
    decided = {cid for d in S.decisions.values() for cid in d.affects}
    # a field the spec adds on purpose (TFElectraForPreTrainingOutput.loss) cites a decision
    spec = [f.name for f in S.outputs[name].fields if f.name in real or f.id not in decided]
    assert spec == real
