"""One run split over processes: shards (``--conformance-shard i/n``, merged by ``merge_shards``) and
pytest-xdist workers (an xdist controller joins its workers' parts with ``join_parts``). What may differ
from one process's report of the same command: ``PROCESS_FIELDS`` (``comparable`` drops it).
"""
from __future__ import annotations

import json

from conformance.report import (REPORT_FORMAT, by_clause, by_family, coverage, deadline_reason, error_edges,
                                min_numeric_of, summarize, summed_family_cache)


def shard_reason(index: int, count: int) -> str:
    return f"{SHARD_REASON} {index}/{count} (--conformance-shard): the other slices' tests were not run here"


#: how the narrowed reason of a shard report begins (merging every shard removes it)
SHARD_REASON = "shard"


class ShardError(ValueError):
    """Shard reports that do not make one run (a missing or repeated slice, mixed counts, other options)."""


def parse_shard(value: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 1 <= i <= n; ShardError otherwise."""
    head, sep, tail = str(value).partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        index = count = 0
    if not sep or count < 1 or not 1 <= index <= count:
        raise ShardError(f"--shard {value}: expected i/n with 1 <= i <= n (e.g. 1/4)")
    return index, count


def shard_of(position: int, count: int) -> int:
    """The slice (1..count) of the test at ``position`` in the run's selection (collection order, after
    -k/-m/--deselect): round robin, so that every slice gets neighbouring parametrizations of each test
    (similar costs) and the assignment depends only on the selection, never on timing."""
    return position % count + 1


def collection_digest(nodeids) -> str:
    """What identifies a selection: shards of one run must have selected the same tests in the same order."""
    import hashlib

    return hashlib.sha256("\n".join(nodeids).encode("utf-8")).hexdigest()[:16]


# ----- one run split over processes: shards (--conformance-shard i/n) and pytest-xdist workers
#: Fields that legitimately differ between a run split into shards or xdist workers, once merged, and a
#: single-process run of the same command; everything else is the same content (``comparable``):
#: - run_info start, end, duration_s: clocks and timings (merged shards: the earliest start, the latest
#:   end and the sum of the processes' durations; an xdist run: the controller's own clock);
#: - run_info pytest_args: the command line (it holds --conformance-shard or -n);
#: - run_info shard, workers: the record of the split itself;
#: - results[].duration_s, families[*][*].duration_s: timings;
#: - results[].builds and compilations, families[*][*].builds and compilations, family_cache: counters of
#:   each process's model cache: a process builds the models its own tests need first, so which test
#:   counts a build depends on how the tests were split (family_cache sums the processes' builds).
#: A run cut short by a deadline (run_info.deadline, narrowed) skips whatever time left out, which no
#: split reproduces. Merged shards that ran on different machines carry the first shard's python, platform
#: and machine (``electra-conformance merge`` warns).
PROCESS_FIELDS = {
    "run_info": ("start", "end", "duration_s", "pytest_args", "shard", "workers"),
    "results": ("duration_s", "builds", "compilations"),
    "families": ("duration_s", "builds", "compilations"),
    "family_cache": None,  # the whole section
}
_REASON_ORDER = ("-k ", "-m ", "--deselect ", "stops at failure", "--conformance-deadline", "selected ", SHARD_REASON,
                 "interrupted")


def comparable(document: dict) -> dict:
    """A copy of ``document`` without PROCESS_FIELDS: equal for a split run's merged report and a
    single-process run of the same command."""
    import copy

    out = copy.deepcopy(document)
    out.pop("family_cache", None)
    for key in PROCESS_FIELDS["run_info"]:
        out["run_info"].pop(key, None)
    for r in out["results"]:
        for key in PROCESS_FIELDS["results"]:
            r.pop(key, None)
    for cells in out["families"].values():
        for cell in cells.values():
            for key in PROCESS_FIELDS["families"]:
                cell.pop(key, None)
    return out


def _reason_rank(reason: str) -> int:
    return next((i for i, p in enumerate(_REASON_ORDER) if reason.startswith(p)), len(_REASON_ORDER))


def order_reasons(reasons) -> list[str]:
    """Narrowed reasons once each, in the order one process gives them (the options first)."""
    return sorted(dict.fromkeys(reasons), key=_reason_rank)


def _joined_reasons(infos: list[dict], deadline_skips: int, *, drop_shard: bool) -> list[str]:
    """The narrowed reasons of the joined run, in the order one process would give them: the options (the
    same in every part), one deadline count for all, interrupted if any part was."""
    reasons = [r for i in infos for r in i.get("narrowed", [])
               if not r.startswith("--conformance-deadline") and not (drop_shard and r.startswith(SHARD_REASON))]
    reasons += [deadline_reason(deadline_skips)] if deadline_skips else []
    return order_reasons(reasons)


def _joined_pairs(documents: list[dict]) -> dict:
    """coverage.pairs of the joined run: a pair is exercised when one part exercised it, so the missing
    pairs are those missing in every part (each part's universe is the same: the impl's capabilities)."""
    joined: dict = {}
    for d in documents:
        for impl, p in d["coverage"].get("pairs", {}).items():
            if impl not in joined:
                joined[impl] = {"total": p["total"], "missing": list(p["missing"])}
            else:
                keep = set(p["missing"])
                joined[impl]["missing"] = [m for m in joined[impl]["missing"] if m in keep]
    return {impl: {"exercised": v["total"] - len(v["missing"]), "total": v["total"], "missing": v["missing"]}
            for impl, v in joined.items()}


def _stale_in_every_part(documents: list[dict]) -> list[dict]:
    """An entry is stale in the joined run when no part used it: stale in every part (a part that did not
    run the tests an entry names holds it as stale)."""
    from collections import Counter

    def key(entry):
        return json.dumps(entry, sort_keys=True)

    counts = [Counter(key(e) for e in d["expectations"].get("stale", [])) for d in documents]
    seen: Counter = Counter()
    out = []
    for entry in documents[0]["expectations"].get("stale", []):
        seen[key(entry)] += 1
        if all(c[key(entry)] >= seen[key(entry)] for c in counts):
            out.append(entry)
    return out


def join_parts(documents: list[dict], positions: list[list[int]], *, drop_shard: bool = False) -> dict:
    """One report from the parts of one run whose selected tests were split between processes (shards,
    xdist workers). ``positions[k][j]`` is where ``documents[k]["results"][j]`` sits in the run's selection:
    the results come back in selection order, as one process lists them, and every view (summary and
    verdicts, clause cells, families, coverage and pairs, stale expectations) is recomputed from the
    joined parts. ShardError when two parts hold the same test."""
    placed: dict[int, dict] = {}
    for document, where in zip(documents, positions, strict=True):
        if len(where) != len(document["results"]):
            raise ShardError(f"a part lists {len(document['results'])} results but {len(where)} positions")
        for position, result in zip(where, document["results"]):
            if position in placed:
                raise ShardError(f"the test {result['nodeid']} is in two parts (position {position})")
            placed[position] = result
    results = [placed[p] for p in sorted(placed)]
    infos = [d["run_info"] for d in documents]
    run_info = {k: v for k, v in infos[0].items() if k != "shard"}
    run_info["start"] = min(i["start"] for i in infos)
    run_info["end"] = max(i["end"] for i in infos)
    run_info["duration_s"] = round(sum(i["duration_s"] for i in infos), 3)
    skipped = sum(i.get("deadline", {}).get("tests_skipped", 0) for i in infos)
    if "deadline" in run_info:
        run_info["deadline"] = {**run_info["deadline"], "tests_skipped": skipped}
    run_info["narrowed"] = _joined_reasons(infos, skipped, drop_shard=drop_shard)
    family_cache = summed_family_cache(documents)
    first = documents[0]
    spec_ids = sorted(set(first["coverage"]["exercised"]) | set(first["coverage"]["missing"]))
    return {
        "report_format": REPORT_FORMAT, "run_info": run_info,
        "summary": summarize(results, min_numeric_of(first)),
        "results": results, "clauses": by_clause(results), "families": by_family(results),
        "family_cache": family_cache,
        "coverage": dict(coverage(results, spec_ids), pairs=_joined_pairs(documents), error_edges=error_edges(results)),
        "expectations": {"entries": first["expectations"]["entries"], "stale": _stale_in_every_part(documents),
                         **({"not_applicable": first["expectations"]["not_applicable"]}
                            if "not_applicable" in first["expectations"] else {})},
    }


def _impl_names(document: dict) -> list[str]:
    return [i["name"] for i in document["run_info"]["implementations"]]


#: run_info that every shard of one run must share: (what the message calls it, how to read it)
_SAME_IN_EVERY_SHARD = (
    ("profile", lambda i: i["profile"]),
    ("spec version", lambda i: i["spec_version"]),
    ("dtypes", lambda i: i["dtypes"]),
    ("devices requested", lambda i: i["devices_requested"]),
    ("--min-numeric", lambda i: i.get("min_numeric", 1)),
    ("implementation versions", lambda i: [(x["name"], x["version"], x["framework_versions"])
                                           for x in i["implementations"]]),
    ("selection (the tests collected after -k/-m/--deselect)",
     lambda i: (i["shard"].get("selected"), i["shard"].get("collection"))),
)


def merge_shards(documents: list[dict], names: list[str] | None = None) -> dict:
    """One report from the n shard reports of one run (``--conformance-shard i/n``, i = 1..n, each once):
    what a single process running the same command would have reported, but for PROCESS_FIELDS. The
    shard's narrowed reason goes; the others (-k, ...) stay. ShardError naming the problem otherwise."""
    names = names or [f"report {k + 1}" for k in range(len(documents))]
    if not documents:
        raise ShardError("no shard report given")
    for name, document in zip(names, documents):
        if "shard" not in document["run_info"]:
            raise ShardError(f"{name} is not a shard report (no run_info.shard)")
    first_name, first = names[0], documents[0]
    impls = _impl_names(first)
    label = ", ".join(impls)
    for name, document in zip(names, documents):
        if _impl_names(document) != impls:
            raise ShardError(f"{first_name} holds {label} but {name} holds {', '.join(_impl_names(document))}: "
                             f"shards of different implementations")
    count = first["run_info"]["shard"]["count"]
    for name, document in zip(names, documents):
        other = document["run_info"]["shard"]
        if other["count"] != count:
            raise ShardError(f"mixed shard counts: {first_name} is shard {first['run_info']['shard']['index']}/"
                             f"{count} but {name} is shard {other['index']}/{other['count']} of {label}")
    by_index: dict[int, str] = {}
    for name, document in zip(names, documents):
        index = document["run_info"]["shard"]["index"]
        if index in by_index:
            raise ShardError(f"{by_index[index]} and {name} are both shard {index}/{count} of {label}")
        by_index[index] = name
    missing = [i for i in range(1, count + 1) if i not in by_index]
    if missing:
        raise ShardError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(f'{i}/{count}' for i in missing)} "
                         f"of {label} missing (given: {', '.join(f'{i}/{count}' for i in sorted(by_index))})")
    for what, read in _SAME_IN_EVERY_SHARD:
        for name, document in zip(names, documents):
            if read(document["run_info"]) != read(first["run_info"]):
                raise ShardError(f"{first_name} and {name} differ in {what}: {read(first['run_info'])!r} vs "
                                 f"{read(document['run_info'])!r}; shards must run the same command")
    ordered = sorted(documents, key=lambda d: d["run_info"]["shard"]["index"])
    return join_parts(ordered, [d["run_info"]["shard"]["positions"] for d in ordered], drop_shard=True)


