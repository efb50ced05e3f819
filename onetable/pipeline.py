"""The stage order, in one place: the CLI runs it in one process, the Airflow DAG runs each stage as
a task. Each stage is a plain function with explicit inputs (store settings, contracts, period, run
id) that returns counts and ids only (what an XCom may carry) and meets the others only through the
store; the adapters here build those inputs from a RunContext.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from onetable.warehouse.periods import Period

if TYPE_CHECKING:  # a DAG file imports this module to parse: nothing heavy at the top
    from onetable.schemas.contracts import Contracts
    from onetable.schemas.deployment import Deployment
    from onetable.warehouse.store import StoreSettings

DATA_ENV = "ONETABLE_DATA_ROOT"
OUT_ENV = "ONETABLE_OUT_DIR"


@dataclass(frozen=True)
class RunContext:
    """What every stage needs, rebuilt in each Airflow task from the environment and two strings:
    the deployment (ONETABLE_PROJECT, or `project`) with the environment filled from its settings."""

    store: StoreSettings
    deployment: Deployment
    period: Period
    run_id: str
    data_root: Path | None
    out_dir: Path
    environ: Mapping[str, str]
    accept_shrink: frozenset[str] = frozenset()  # sources whose shrunken snapshot a person accepted

    @classmethod
    def create(
        cls, period: str, run_id: str, environ: Mapping[str, str] = os.environ,
        accept_shrink: Collection[str] = (), project: Path | None = None,
    ) -> RunContext:  # fmt: skip
        from onetable.schemas.deployment import load_deployment, project_dir
        from onetable.warehouse.store import StoreSettings

        deployment = load_deployment(project_dir(environ, project))
        environ = deployment.environ(environ)
        data = environ.get(DATA_ENV)
        store = StoreSettings.from_env(environ)
        return cls(
            store=store,
            deployment=deployment,
            period=Period.parse(period),
            run_id=run_id,
            data_root=Path(data) if data else None,
            out_dir=out_dir(environ, store),
            environ=dict(environ),
            accept_shrink=frozenset(accept_shrink),
        )

    @property
    def contracts(self) -> Contracts:
        return self.deployment.contracts


def out_dir(environ: Mapping[str, str], store: StoreSettings) -> Path:
    """Where extracts, Data Docs and the audit anchor go: ONETABLE_OUT_DIR, else beside the
    state folder."""
    return Path(environ.get(OUT_ENV) or store.state_dir.parent / "out")


def check_before_run(ctx: RunContext) -> None:
    """What would otherwise fail only after publish, checked before the first stage: the
    pseudonym key, when an entry due this period pseudonymises (`check_pseudonym_key`)."""
    from onetable.warehouse.sharing import PSEUDONYM_KEY_ENV, check_pseudonym_key

    check_pseudonym_key(
        ctx.contracts,
        str(ctx.period),
        ctx.environ.get(PSEUDONYM_KEY_ENV),
        ctx.store.key,
        ctx.deployment.sharing,
    )


def new_run_id(period: Period, now: datetime | None = None) -> str:
    """A readable, unique run id: the period and the start time."""
    now = now or datetime.now(UTC)
    return f"{period}_{now:%Y%m%dT%H%M%S%f}"


def _extract(ctx: RunContext) -> dict:
    from onetable.connectors.extract import extract_all, nothing_new

    outcomes = extract_all(ctx.store, ctx.contracts, end=ctx.period.end, run_id=ctx.run_id,
                           data_root=ctx.data_root, environ=ctx.environ,
                           accept_shrink=ctx.accept_shrink)  # fmt: skip
    missing = nothing_new(ctx.store, ctx.contracts, ctx.period, ctx.data_root,
                          [o.source for o in outcomes])  # fmt: skip
    return {
        o.source: {
            "windows": len(o.manifests),
            "read": sum(m.read for m in o.manifests),
            "landed": sum(m.landed for m in o.manifests),
            "quarantined": sum(m.quarantined for m in o.manifests),
            "unchanged": sum(m.unchanged for m in o.manifests),
            "error": o.error,
            "note": o.note,
            "missing_columns": sorted({c for m in o.manifests for c in m.missing_columns}),
            "delivery": ctx.contracts.sources[o.source].delivery,
            "missing": missing.get(o.source),
        }
        for o in outcomes
    }


def _standardize(ctx: RunContext) -> dict:
    from onetable.linkage.staging import standardize

    return standardize(ctx.store, ctx.contracts, ctx.period, ctx.run_id)


def _link(ctx: RunContext) -> dict:
    from onetable.linkage.link import link

    return link(ctx.store, ctx.contracts, ctx.period, ctx.run_id, ctx.deployment.settings)


def _check(ctx: RunContext) -> dict:
    from onetable.quality.stage import check

    return check(
        ctx.store, ctx.contracts, ctx.period, ctx.run_id, ctx.out_dir / "quality" / "data_docs"
    )


def _publish(ctx: RunContext) -> dict:
    from onetable.warehouse.publish import publish

    return publish(ctx.store, ctx.period, ctx.run_id)


def _one_table(ctx: RunContext) -> dict:
    from onetable.warehouse.indicators import one_table

    return one_table(ctx.store, ctx.deployment.one_table, ctx.period, ctx.run_id)


def _share(ctx: RunContext) -> dict:
    from onetable.warehouse.sharing import PSEUDONYM_KEY_ENV, share

    return share(ctx.store, ctx.contracts, ctx.deployment.sharing, str(ctx.period), ctx.run_id,
                 ctx.out_dir / "share", ctx.environ.get(PSEUDONYM_KEY_ENV))  # fmt: skip


# The stage order, for the CLI and the DAG alike. Each adapter imports its stage when it runs, so
# parsing a DAG file imports none of them.
STAGES: dict[str, Callable[[RunContext], dict]] = {
    "extract": _extract,
    "standardize": _standardize,
    "link": _link,
    "check": _check,
    "publish": _publish,
    "one_table": _one_table,
    "share": _share,
}


class RequiredSourceMissing(Exception):
    """A source whose mapping says `delivery: required` has nothing new for the period: the run
    stops after the extract stage, so nothing of the period is published. The message says what
    was looked for, per source (file globs and dates, tables, URLs and windows; no values)."""


def _required_missing(extract: dict[str, dict]) -> list[str]:
    return [
        f"{r['missing']}; the source is required, so the period is not published"
        for r in extract.values()
        if r.get("missing") and r.get("delivery") == "required"
    ]


def _stop_if_required_missing(stage: str, result: dict) -> None:
    if stage == "extract" and (missing := _required_missing(result)):
        raise RequiredSourceMissing("\n".join(missing))


def run_period(
    ctx: RunContext, progress: Callable[[str, dict], None] | None = None
) -> dict[str, dict]:
    """Run every stage in order for one period, holding the store for the whole run (no other
    run's stage comes between two of its stages); returns each stage's counts. A required source
    with nothing new stops it after the extract stage (RequiredSourceMissing)."""
    from onetable.warehouse.store import run_lock

    results = {}
    with run_lock(ctx.store):
        for name, run in STAGES.items():
            results[name] = run(ctx)
            if progress:
                progress(name, results[name])
            _stop_if_required_missing(name, results[name])
    return results


def run_stage(name: str, ctx: RunContext) -> dict:
    """One stage, as an Airflow task runs it: it waits while a whole run holds the store. The
    extract task fails when a required source has nothing new, so no later task runs."""
    from onetable.warehouse.store import run_lock

    with run_lock(ctx.store):
        result = STAGES[name](ctx)
    _stop_if_required_missing(name, result)
    return result


@dataclass(frozen=True)
class Verdict:
    """What a run amounts to, for its last line and its exit status."""

    status: str  # "published", "published with warnings" or "not published"
    reasons: list[str]  # the warnings, or why nothing was published
    published: list[str]  # sources whose data of this period is in the published snapshot
    stale: list[str]  # sources that failed: the period has what they gave before, if anything


def verdict(results: dict[str, dict], failure: str | None = None) -> Verdict:
    """The verdict on a run from the results of the stages it finished, and the failure that
    stopped it (a stage's error, named; a required source with nothing new is named from the
    extract's results instead). Published means the publish stage committed."""
    extract = results.get("extract", {})
    stale = [name for name, r in extract.items() if r["error"]]
    if "publish" not in results:
        reasons = _required_missing(extract) or [failure or "the run stopped before publishing"]
        return Verdict("not published", reasons, [], stale)
    published = [name for name in extract if name not in stale]
    reasons = [f"source {name} failed, so it is stale for this period" for name in stale]
    reasons += [r["missing"] for r in extract.values() if r.get("missing") and not r["error"]]
    reasons += [
        f"source {name}: mapped column(s) {', '.join(r['missing_columns'])} missing from the "
        "delivery, so those fields are empty for its records"
        for name, r in extract.items()
        if r.get("missing_columns")
    ]
    for name, r in results.get("standardize", {}).items():
        if codes := r.get("unknown_village_codes"):
            listed = ", ".join(f"{code} ({n} record(s))" for code, n in codes.items())
            reasons.append(
                f"source {name}: village code(s) not in the division registry, placing no one: "
                f"{listed}"
            )
    if unplaced := results.get("one_table", {}).get("unplaced"):
        listed = results["one_table"].get("unplaced_persons", [])
        more = f"; and {unplaced - len(listed)} more" if unplaced > len(listed) else ""
        reasons.append(
            f"one table: {unplaced} active person(s) with no village, counted nowhere: "
            f"{'; '.join(listed)}{more}"
        )
    if violations := results.get("one_table", {}).get("violations"):
        reasons.append(f"one table: {len(violations)} rule violation(s) between indicators")
    for entry, r in results.get("share", {}).items():
        if r.get("why_empty"):
            reasons.append(f"extract {entry}: 0 rows: {r['why_empty']}")
    if failure:
        reasons.append(failure)
    return Verdict("published with warnings" if reasons else "published", reasons, published, stale)
