"""Human views of a report: the terminal matrix, a Markdown page and a standalone HTML page.

Matrix rows are clause families, columns implementation/device; a cell counts outcomes
(p passed, f failed, x expected failure, u unexpected pass, s skipped) and the largest measured error.
"""
from __future__ import annotations

import html as _html
import re

from conformance.results import headline

LEGEND = "p passed, f failed, x expected failure (expectations file), u unexpected pass, s skipped"
_CODES = (("passed", "p"), ("failed", "f"), ("xfailed", "x"), ("unexpected_pass", "u"), ("skipped", "s"))


def columns(document: dict) -> list[str]:
    seen: dict = {}
    for r in document["results"]:
        seen.setdefault(f"{r['impl']}/{r['device']}", None)
    return list(seen)


def cell_counts(cell: dict | None) -> str:
    if not cell:
        return "-"
    parts = [f"{code}{cell[key]}" for key, code in _CODES if cell.get(key) or key == "passed"]
    return " ".join(parts)


def cell_error(cell: dict | None) -> str:
    if not cell or cell.get("max_abs_err") is None:
        return ""
    ratio = cell.get("max_error_ratio")
    return f"{cell['max_abs_err']:.2g}" + (f" ({ratio:.2g} of tol)" if ratio is not None else "")


def matrix_rows(document: dict) -> tuple[list[str], list[list[str]]]:
    cols = columns(document)
    rows = []
    families = document["families"]
    for family in sorted(families):
        row = [family]
        for col in cols:
            cell = families[family].get(col)
            err = cell_error(cell)
            row.append(cell_counts(cell) + (f"; err {err}" if err else ""))
        rows.append(row)
    totals = ["TOTAL"]
    for col in cols:
        total = {k: sum(families[f].get(col, {}).get(k, 0) for f in families) for k, _ in _CODES}
        totals.append(cell_counts(total))
    rows.append(totals)
    return ["family"] + cols, rows


def matrix_lines(document: dict) -> list[str]:
    header, rows = matrix_rows(document)
    if not document["results"]:
        return ["(no conformance tests ran)"]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    lines = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    summary = document["summary"]
    lines.append(f"({LEGEND}; err: max abs error and its ratio to the tolerance)")
    lines.extend(verdict_lines(document))
    lines.append(f"{overall(summary)}: {summary['total']} results, {summary['failed']} failed, "
                 f"{summary['unexpected_pass']} unexpected passes, {summary['xfailed']} expected failures")
    return lines


def overall(summary: dict) -> str:
    if summary["ok"]:
        return "OK"
    failing = summary["failed"] or summary["unexpected_pass"]
    return "NOT OK" if failing or not summary.get("validation") else "NOT VALIDATED"


def verdict_lines(document: dict) -> list[str]:
    """Per implementation: its verdict and what it rests on (conformance.report.validation)."""
    lines = []
    for impl, v in document["summary"].get("validation", {}).items():
        kinds = ", ".join(f"{k} {n}" for k, n in v["comparisons_by_kind"].items()) or "none"
        lines.append(f"{impl}: {v['verdict']}: {v['reference_comparisons']} numeric comparisons with the reference "
                     f"(all comparisons: {kinds}); {v['clauses_validated']} clauses validated; "
                     f"{sum(v['unsupported'].values())} tests of unsupported features, {v['not_applicable']} "
                     f"not applicable")
        pairs = document["coverage"].get("pairs", {}).get(impl)
        if pairs:
            lines.append(f"  feature pairs exercised together: {pairs['exercised']} of the {pairs['total']} its "
                         f"capabilities allow (the others: coverage.pairs.{impl}.missing)")
        edges = document["coverage"].get("error_edges", {}).get(impl)
        if edges:
            met = sum(len(c["met"]) for c in edges.values())
            tried = met + sum(len(c["missed"]) for c in edges.values())
            lines.append(f"  error-clause edges raised as specified: {met} of the {tried} tried, over {len(edges)} "
                         f"clauses (each edge: coverage.error_edges.{impl})")
        if v["verdict"] == "NOT VALIDATED":
            lines.append(f"  {impl} made fewer than {v['min_numeric']} numeric comparisons with the reference "
                         f"(--min-numeric): passing says nothing about its numbers")
        for reason, count in list(v["unsupported"].items())[:10]:
            lines.append(f"  unsupported ({count} tests): {reason[:160]}")
    for entry in document["run_info"].get("not_run", []):
        lines.append(f"{entry['impl']}: NOT RUN in this environment: it {entry['reason']}")
    return lines


def failure_lines(document: dict) -> list[str]:
    """Each failing test: its id, the clauses it failed, the first line of the error and, for a property
    test, the input that failed (hypothesis' falsifying example)."""
    lines = []
    for r in _failures(document):
        clause = ", ".join(r["failed_clauses"] or r["clauses"]) or "(no clause declared)"
        lines.append(f"FAILED {r['test_id']} [{clause}] ({r['outcome']})")
        message = [ln.strip() for ln in r["message"].splitlines() if ln.strip()]
        if message:
            lines.append(f"  {headline(r['message'])[:300]}")
        example = [ln for ln in message if ln.startswith(("Falsifying example", "Falsifying explicit example"))]
        lines.extend(f"  {ln[:300]}" for ln in example[:1])
    return lines


def stale_lines(document: dict) -> list[str]:
    """The expectation entries no failure of the run matched, one line each; for a run narrowed on purpose
    (-k, selected modules, ...) one line with their count, since an entry for a test it left out says nothing."""
    stale = document["expectations"]["stale"]
    narrowed = document["run_info"].get("narrowed") or []
    if stale and narrowed:
        return [f"note: {len(stale)} expectation entries matched no test of this narrowed run "
                f"({'; '.join(narrowed)}); whether they are stale takes the whole suite"]
    return [f"WARNING stale expectation ({e['impl']}, {e['file']}): clause {e['clause']} @ {e['test']} matched no test"
            for e in stale]


def _failures(document: dict) -> list[dict]:
    return [r for r in document["results"] if r["outcome"] in ("failed", "unexpected_pass")]


def markdown(document: dict) -> str:
    info = document["run_info"]
    impls = ", ".join(f"{i['name']} {i['version']}" for i in info["implementations"])
    header, rows = matrix_rows(document)
    out = ["# ELECTRA conformance report", "",
           f"- implementations: {impls}",
           *[f"- not run here: {e['impl']} (it {e['reason']})" for e in info.get("not_run", [])],
           f"- spec version: {info['spec_version']}",
           f"- profile: {info['profile']['name']}; devices requested: {info['devices_requested']}",
           f"- run: {info['start']} .. {info['end']} ({info['duration_s']} s), python {info['python']}",
           f"- clause coverage: {document['coverage']['exercised_count']} of {document['coverage']['spec_count']}",
           "", "## Matrix", "", LEGEND, "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    failures = _failures(document)
    out += ["", f"## Failures ({len(failures)})", ""]
    for r in failures:
        clause = ", ".join(r["failed_clauses"] or r["clauses"]) or "(no clause declared)"
        message = r["message"].replace("\n", " ")[:400]
        out.append(f"- `{r['test_id']}` ({r['outcome']}) clause `{clause}`: {message}")
    stale = document["expectations"]["stale"]
    if stale:
        out += ["", "## Stale expectations", ""]
        out += [f"- {e['impl']}: `{e['clause']}` @ `{e['test']}`" for e in stale]
    return "\n".join(out) + "\n"


def html(document: dict) -> str:
    esc = _html.escape
    header, rows = matrix_rows(document)
    info = document["run_info"]
    impls = ", ".join(f"{i['name']} {i['version']}" for i in info["implementations"])

    def cls(text: str) -> str:
        return "bad" if re.search(r"(^| )[fu][1-9]", text) else "ok"

    table = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    for r in rows:
        cells = [f"<th>{esc(r[0])}</th>"] + [f"<td class='{cls(v)}'>{esc(v)}</td>" for v in r[1:]]
        table.append("<tr>" + "".join(cells) + "</tr>")
    table.append("</table>")
    failures = "".join(
        f"<li><code>{esc(r['test_id'])}</code> ({esc(r['outcome'])}): <code>"
        f"{esc(', '.join(r['failed_clauses'] or r['clauses']))}</code> {esc(r['message'][:400])}</li>"
        for r in _failures(document))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ELECTRA conformance report</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
        "padding:4px 8px;text-align:left}td.bad{background:#fdd}td.ok{background:#dfd}</style></head><body>"
        f"<h1>ELECTRA conformance report</h1><p>{esc(impls)}; spec {esc(info['spec_version'])}; profile "
        f"{esc(info['profile']['name'])}; {esc(info['start'])} ({info['duration_s']} s)</p>"
        f"<p>{esc(LEGEND)}</p>{''.join(table)}<h2>Failures</h2><ul>{failures}</ul></body></html>\n")
