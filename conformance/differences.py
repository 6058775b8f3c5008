"""What one implementation offers and does differently from the documented API, from a report.

``electra-conformance differences REPORT --impl NAME`` renders it as Markdown: the features the adapter
declared it lacks (its Capabilities against those of the whole documented API), the behaviours that
differ (expectations entries with the error measured in the run), the failures nobody expected, and the
tests skipped for a missing feature. It is the page a user moving to that implementation reads.
"""
from __future__ import annotations

from fnmatch import fnmatchcase

from conformance.adapters.common import full_capabilities
from conformance.adapters.tf_common import INPUT_FORMATS as TF_INPUT_FORMATS
from conformance.registry import spec_class_names
from conformance.report import headline_of

#: the documented checkpoint files of each framework (spec files.yaml: safetensors and the framework's own)
_DOCUMENTED_FILES = {"tf": ("safetensors", "h5"), "flax": ("safetensors", "msgpack")}
_KINDS = (("classes", "classes"), ("inputs", "call inputs"), ("flags", "call flags"), ("outputs", "output fields"),
          ("input_formats", "input formats"), ("files", "checkpoint files (save_pretrained / from_pretrained)"),
          ("apis", "APIs"))


class DifferencesError(ValueError):
    """The report cannot answer for that implementation."""


def documented(framework: str) -> dict:
    """The whole documented API of a framework, in the form of Capabilities.as_dict."""
    formats = TF_INPUT_FORMATS if framework == "tf" else ("kwargs",)
    caps = full_capabilities(framework, spec_class_names(framework), methods=(), input_formats=formats,
                             files=_DOCUMENTED_FILES[framework])
    return caps.as_dict()


def _implementation(document: dict, impl: str) -> dict:
    found = [i for i in document["run_info"]["implementations"] if i["name"] == impl]
    if not found:
        names = [i["name"] for i in document["run_info"]["implementations"]]
        raise DifferencesError(f"the report has no implementation {impl!r}; it has {names}")
    if "capabilities" not in found[0]:
        raise DifferencesError(f"the report predates declared capabilities; rerun the suite for {impl!r}")
    return found[0]


def _measured(results: list[dict], clause: str) -> str:
    """The largest error measured under ``clause`` (an expectations pattern) in ``results``, with its allowance."""
    worst = None
    for r in results:
        for m in r["measurements"]:
            if fnmatchcase(m["clause"], clause) and (worst is None or m["max_abs_err"] > worst["max_abs_err"]):
                worst = m
    if worst is None:
        return ""
    return f"max abs error {worst['max_abs_err']:.3g} (atol {worst['atol']:g}, rtol {worst['rtol']:g}, field {worst['field']})"


def markdown(document: dict, impl: str) -> str:
    info = _implementation(document, impl)
    declared, full = info["capabilities"], documented(info["framework"])
    results = [r for r in document["results"] if r["impl"] == impl]
    verdict = document["summary"]["validation"].get(impl, {})
    out = [f"# {impl}: what differs from the documented API", "",
           f"- implementation: {info['version']} on " + ", ".join(f"{k} {v}" for k, v in info["framework_versions"].items()),
           f"- verdict: {verdict.get('verdict', 'no results')}: {verdict.get('reference_comparisons', 0)} numeric "
           f"comparisons with the reference, {verdict.get('clauses_validated', 0)} clauses validated",
           f"- spec {document['run_info']['spec_version']}, profile {document['run_info']['profile']['name']}", "",
           "## Not offered", "", "Documented features the adapter declares it lacks (its `capabilities()`):", ""]
    for key, label in _KINDS:
        missing = [x for x in full[key] if x not in declared[key]]
        if missing:
            out.append(f"- {label}: " + ", ".join(f"`{x}`" for x in missing))
    for name, values in declared["config"].items():
        out.append(f"- config `{name}`: only " + ", ".join(f"`{v!r}`" for v in values))
    if declared["config_check"]:
        out.append("- further config relations (its `config_check`)")
    xfailed = [r for r in results if r["outcome"] == "xfailed"]
    entries = [e for e in document["expectations"]["entries"] if e["impl"] == impl]
    out += ["", f"## Behaves differently ({len(xfailed)} tests, as its expectations file says)", "",
            "| clause | tests | measured | reason |", "|---|---|---|---|"]
    for e in entries:
        matched = [r for r in xfailed if any(fnmatchcase(c, e["clause"]) for c in r["failed_clauses"] or r["clauses"])]
        reason = " ".join(e["reason"].split())
        out.append(f"| `{e['clause']}` | {len(matched)} | {_measured(matched, e['clause'])} | {reason} |")
    failed = [r for r in results if r["outcome"] in ("failed", "unexpected_pass")]
    out += ["", f"## Unexpected failures ({len(failed)})", ""]
    out += [f"- `{r['test_id']}` `{', '.join(r['failed_clauses'] or r['clauses'])}`: {headline_of(r['message'])[:300]}"
            for r in failed]
    out += ["", "## Tests skipped for a missing feature", ""]
    out += [f"- {count} tests: {reason}" for reason, count in verdict.get("unsupported", {}).items()]
    return "\n".join(out) + "\n"
