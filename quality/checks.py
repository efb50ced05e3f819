"""Quality checks of a frame against its entity contract, with Great Expectations (GX 1.24).

`suite_for` turns an entity contract into an expectation suite: a required column must not be null,
a value set becomes an in-set check, a regex a match check, a min/max a between check, a checksum
the custom expectation of `onetable.quality.expectations`. Every expectation carries a stable rule
id (`person.id_number.checksum`) and a Chinese reason in its `meta`.

`check_frame` validates a pandas frame on an ephemeral context and returns counts per rule plus one
row per failing record and rule (its key, never its values): results are asked for in the COMPLETE
format with the key as the index column and the failing values excluded, so no personal value
reaches a GX result or Data Docs. A rule whose metric errors (a column missing from the frame) is
reported as an error of the batch, never as failing rows (docs/architecture.md, "Library traps").

GX takes seconds to import, so only tasks import this module; `onetable.quality` itself does not.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import pyarrow as pa
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.data_context.types.base import ProgressBarsConfig

from onetable.quality import expectations as cne
from onetable.schemas.contracts import CodeTable, Column, Entity, Rule, shipped_codes
from onetable.warehouse.ledger import Transaction, insert_arrow
from onetable.warehouse.masking import scrub

DOCS_SITE = "onetable_quality"
PARSE_DATE = "onetable_values_are_dates"  # the pre-check of date columns, done before GX
_DATE_TYPES = ("date", "timestamp")

RESULTS_TABLE = "quality.results"
_RESULTS_ARROW = pa.schema(
    [
        ("run_id", pa.string()),
        ("period", pa.string()),
        ("dataset", pa.string()),
        ("rule_id", pa.string()),
        ("column", pa.string()),
        ("expectation", pa.string()),
        ("success", pa.bool_()),
        ("element_count", pa.int64()),
        ("unexpected_count", pa.int64()),
        ("unexpected_percent", pa.float64()),
        ("error", pa.string()),
        ("recorded_at", pa.timestamp("us")),
    ]
)
_RESULTS_DDL = """
    run_id VARCHAR NOT NULL, period VARCHAR NOT NULL, dataset VARCHAR NOT NULL,
    rule_id VARCHAR NOT NULL, "column" VARCHAR, expectation VARCHAR NOT NULL,
    success BOOLEAN NOT NULL, element_count BIGINT, unexpected_count BIGINT,
    unexpected_percent DOUBLE, error VARCHAR, recorded_at TIMESTAMP NOT NULL"""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    """What a check found: counts per rule, failing keys per rule, and the verdict.

    `results` holds one dict per rule (rule_id, column, expectation, reason, success,
    element_count, unexpected_count, unexpected_percent, error); a rule with an `error` could not
    be evaluated and has no counts. `failures` has one row per failing record and rule: key,
    rule_id, field, reason. `success` is true only when every rule ran and passed.
    """

    results: list[dict[str, Any]]
    failures: pd.DataFrame
    success: bool
    docs_index: Path | None = None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["error"]]


# --- suites ---------------------------------------------------------------------------------


def _label(name: str, column: Column) -> str:
    return column.description_zh or name


def _doc_text(rule_id: str, reason: str) -> str:
    """What Data Docs show for a rule: it names the rule and the failure it looks for. Data Docs
    insert `description` unescaped and treat `$` as a template marker."""
    return html.escape(f"检查：{reason}（{rule_id}）").replace("$", "＄")


def _values_text(values: list[str]) -> str:
    shown = "、".join(values[:8])
    return shown if len(values) <= 8 else f"{shown}等{len(values)}项"


def _bound(value: float | date | None, column: Column) -> float | datetime | None:
    if value is None:
        return None
    if column.type in _DATE_TYPES:
        if not isinstance(value, date):
            raise ValueError(f"a {column.type} column takes date bounds, got {value!r}")
        return datetime(value.year, value.month, value.day)
    return float(value)


def _range_reason(label: str, column: Column, lo: Any, hi: Any) -> str:
    dated = column.type in _DATE_TYPES
    if lo is not None and hi is not None:
        return f"{label}超出范围（{lo}至{hi}）"
    if lo is not None:
        return f"{label}{'早于' if dated else '小于'}{lo}"
    return f"{label}{'晚于' if dated else '大于'}{hi}"


_CHECKSUM_REASONS = {
    "cn_id_number": "公民身份号码无效（格式、出生日期或校验位错误）",
    "credit_code": "统一社会信用代码无效（格式或校验位错误）",
}


def _allowed(rule: Rule, codes: Mapping[str, CodeTable]) -> list[str] | None:
    """The values a column may take: its rule's own list, or its code table's canonical values
    (a county's own table when it gave one: `load_contracts(codes_dir=...)`)."""
    if rule.code_table is None:
        return rule.values
    if rule.code_table not in codes:
        raise ValueError(f"the rule names code table {rule.code_table!r}, which was not given")
    return list(codes[rule.code_table].values)


def _rules(
    entity: Entity, as_of: date | None, codes: Mapping[str, CodeTable]
) -> Iterable[tuple[str, str, str, tuple[type, dict[str, Any]]]]:
    """(rule id, column, reason, (expectation class, kwargs)) for every check of the contract."""
    for name, column in entity.columns.items():
        label = _label(name, column)
        prefix = f"{entity.entity}.{name}"
        if column.required:
            yield (
                f"{prefix}.required",
                name,
                f"{label}缺失",
                (gxe.ExpectColumnValuesToNotBeNull, {}),
            )
        rule = column.rule
        if rule is None:
            continue
        allowed = _allowed(rule, codes)
        if allowed is not None:
            reason = f"{label}取值不在代码表内（{_values_text(allowed)}）"
            spec = (gxe.ExpectColumnValuesToBeInSet, {"value_set": allowed})
            yield f"{prefix}.values", name, reason, spec
        if rule.regex is not None:
            spec = (gxe.ExpectColumnValuesToMatchRegex, {"regex": rule.regex})
            yield f"{prefix}.regex", name, f"{label}格式不符", spec
        if rule.min is not None or rule.max is not None:
            reason = _range_reason(label, column, rule.min, rule.max)
            kwargs = {"min_value": _bound(rule.min, column), "max_value": _bound(rule.max, column)}
            yield f"{prefix}.range", name, reason, (gxe.ExpectColumnValuesToBeBetween, kwargs)
        if rule.checksum == "cn_id_number":
            kwargs = {"as_of": as_of.isoformat()} if as_of else {}
            spec = (cne.ExpectColumnValuesToBeValidCnIdNumber, kwargs)
            yield f"{prefix}.checksum", name, _CHECKSUM_REASONS["cn_id_number"], spec
        elif rule.checksum == "credit_code":
            spec = (cne.ExpectColumnValuesToBeValidCreditCode, {})
            yield f"{prefix}.checksum", name, _CHECKSUM_REASONS["credit_code"], spec


def suite_for(
    entity: Entity, *, as_of: date | None = None, codes: Mapping[str, CodeTable] | None = None
) -> gx.ExpectationSuite:
    """The expectation suite of an entity contract, named after the entity.

    `as_of` is the date an ID number's birth date may not be later than (default: today); a rerun of
    an old period passes its reference date to get the same answers as the first run. `codes` are
    the code tables a `rule: {code_table: ...}` names (`Contracts.codes`; the shipped ones when
    not given).
    """
    expectations = [
        cls(
            column=column,
            description=_doc_text(rule_id, reason),
            meta={"rule_id": rule_id, "column": column, "reason_zh": reason},
            **kwargs,
        )
        for rule_id, column, reason, (cls, kwargs) in _rules(
            entity, as_of, shipped_codes() if codes is None else codes
        )
    ]
    # Built whole: adding expectations one by one needs a data context.
    return gx.ExpectationSuite(
        name=entity.entity, expectations=expectations, meta={"entity": entity.entity}
    )


# --- checking a frame -----------------------------------------------------------------------


def _as_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A date column as datetime64, and which non-null values are not dates at all.

    Second resolution keeps dates before 1677 (pandas' nanosecond range) so the range rule, not
    this one, reports them. Strings must be ISO dates: the standardizers have parsed the rest.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values, pd.Series(False, index=values.index)
    try:
        return values.astype("datetime64[s]"), pd.Series(False, index=values.index)
    except (TypeError, ValueError, OverflowError):
        pass

    def one(value: Any) -> Any:
        if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
            return None
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError:
                return pd.NaT
        return pd.NaT

    converted = values.map(one)
    bad = converted.map(lambda v: v is pd.NaT)
    return converted.where(~bad, None).astype("datetime64[s]"), bad


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _error_text(exception_info: dict) -> str | None:
    """The messages of a failed metric, scrubbed: a library's message may quote a value."""
    infos = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    messages = [
        scrub(str(i.get("exception_message") or "metric failed"))
        for i in infos
        if isinstance(i, dict) and i.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def _failing_keys(result: dict, key: str) -> list[Any]:
    keys: list[Any] = []
    for item in result.get("unexpected_index_list") or []:
        if isinstance(item, dict):
            value = item.get(key)
            keys.extend(value if isinstance(value, list) else [value])
    return [k.item() if hasattr(k, "item") else k for k in keys]


def _context(docs_dir: Path | None) -> Any:
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    # The ephemeral default site is a random temp dir; the audit site is a fixed folder.
    for site in ctx.get_site_names():
        ctx.delete_data_docs_site(site)
    if docs_dir is not None:
        ctx.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
            },
        )
    return ctx


def check_frame(
    frame: pd.DataFrame,
    entity: Entity,
    *,
    key: str,
    docs_dir: Path | None = None,
    as_of: date | None = None,
    run_name: str | None = None,
    codes: Mapping[str, CodeTable] | None = None,
) -> CheckResult:
    """Validate `frame` (canonical column names of `entity`, plus the `key` column naming each row)
    against the entity's suite.

    `key` must be unique and non-null, and must not be a personal column (it is what the results
    and Data Docs show of a failing row). With `docs_dir`, Data Docs are built there (a fixed
    folder, made absolute); `run_name` names the run in them. `codes` as for `suite_for`.
    """
    if key not in frame.columns:
        raise ValueError(f"check of {entity.entity}: the key column {key!r} is not in the frame")
    if key in entity.columns and entity.columns[key].personal:
        raise ValueError(
            f"check of {entity.entity}: the key column {key!r} is personal data; "
            "use a row or record id, since failing keys are shown in results and Data Docs"
        )
    if frame[key].isna().any() or not frame[key].is_unique:
        raise ValueError(f"check of {entity.entity}: the key column {key!r} must be unique and set")

    frame = frame.copy(deep=False)
    results: list[dict[str, Any]] = []
    failures: list[pd.DataFrame] = []
    for name, column in entity.columns.items():
        if column.type not in _DATE_TYPES or name not in frame.columns:
            continue
        frame[name], bad = _as_dates(frame[name])
        rule_id, reason = f"{entity.entity}.{name}.type", f"{_label(name, column)}不是有效日期"
        n_bad = int(bad.sum())
        results.append(
            _result(rule_id, name, PARSE_DATE, reason, n_bad == 0, len(frame), n_bad, None)
        )
        if n_bad:
            keys = frame.loc[bad.to_numpy(), key].tolist()
            failures.append(_failure_rows(keys, rule_id, name, reason))

    suite = suite_for(entity, as_of=as_of, codes=codes)
    ctx = _context(Path(docs_dir).resolve() if docs_dir is not None else None)
    suite = ctx.suites.add(suite)
    batch = (
        ctx.data_sources.add_pandas("onetable")
        .add_dataframe_asset(entity.entity)
        .add_batch_definition_whole_dataframe("frame")
    )
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"{entity.entity}_check", data=batch, suite=suite)
    )
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [key],
        "exclude_unexpected_values": True,
        "return_unexpected_index_query": False,
    }
    actions = [UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE])] if docs_dir else []
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name=f"{entity.entity}_checkpoint",
            validation_definitions=[definition],
            result_format=result_format,
            actions=actions,
        )
    )
    with warnings.catch_warnings():
        # GX matches with str.contains; pandas warns when a contract regex has groups.
        warnings.filterwarnings("ignore", "This pattern is interpreted as a regular expression")
        run = checkpoint.run(
            batch_parameters={"dataframe": frame},
            # GX reads a run name like 2026-01 as a run time unless it is given one.
            run_id=gx.RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
        )
    validation = next(iter(run.run_results.values()))

    order = {e.meta["rule_id"]: i for i, e in enumerate(suite.expectations)}
    for r in sorted(validation.results, key=lambda r: order[r.expectation_config.meta["rule_id"]]):
        config, res = r.expectation_config, dict(r.result or {})
        meta = config.meta
        if "unexpected_count" not in res:  # the metric itself errored: a batch error
            error = _error_text(r.exception_info or {}) or "the rule could not be evaluated"
            results.append(
                _result(
                    meta["rule_id"],
                    meta["column"],
                    config.type,
                    meta["reason_zh"],
                    False,
                    None,
                    None,
                    error,
                )
            )
            continue
        results.append(
            _result(
                meta["rule_id"],
                meta["column"],
                config.type,
                meta["reason_zh"],
                bool(r.success),
                res.get("element_count"),
                res.get("unexpected_count"),
                None,
                res.get("unexpected_percent"),
            )
        )
        keys = _failing_keys(res, key)
        if keys:
            failures.append(_failure_rows(keys, meta["rule_id"], meta["column"], meta["reason_zh"]))

    table = pd.concat(failures, ignore_index=True) if failures else _failure_rows([], "", "", "")
    table = table.sort_values(["key", "rule_id"], kind="stable", ignore_index=True)
    docs_index = None
    if docs_dir is not None:
        docs_index = Path(docs_dir).resolve() / "index.html"
    success = all(r["success"] and not r["error"] for r in results)
    n_errors = sum(1 for r in results if r["error"])
    log.info(
        "checked %s: %d rows, %d rules, %d failures, %d errors",
        entity.entity,
        len(frame),
        len(results),
        len(table),
        n_errors,
    )
    return CheckResult(results=results, failures=table, success=success, docs_index=docs_index)


def _result(
    rule_id: str,
    column: str | None,
    expectation: str,
    reason: str,
    success: bool,
    element_count: Any,
    unexpected_count: Any,
    error: str | None,
    unexpected_percent: Any = None,
) -> dict[str, Any]:
    count, bad = _int(element_count), _int(unexpected_count)
    if unexpected_percent is None and count and bad is not None:
        unexpected_percent = 100.0 * bad / count
    return {
        "rule_id": rule_id,
        "column": column,
        "expectation": expectation,
        "reason": reason,
        "success": success,
        "element_count": count,
        "unexpected_count": bad,
        "unexpected_percent": None if unexpected_percent is None else float(unexpected_percent),
        "error": error,
    }


def _failure_rows(keys: list[Any], rule_id: str, field: str, reason: str) -> pd.DataFrame:
    n = len(keys)
    return pd.DataFrame(
        {"key": keys, "rule_id": [rule_id] * n, "field": [field] * n, "reason": [reason] * n}
    )


# --- storing results ------------------------------------------------------------------------


def write_results(
    tx: Transaction,
    results: CheckResult | Iterable[dict[str, Any]],
    *,
    run_id: str,
    period: str,
    dataset: str,
) -> int:
    """Store a check's counts in `quality.results` (created if missing), replacing what the same
    run stored for the same period and dataset, so a retried task does not count twice. Counts
    only: no value of any row. Returns the number of rows written."""
    rows = results.results if isinstance(results, CheckResult) else list(results)
    con = tx.con
    con.execute(f"CREATE TABLE IF NOT EXISTS {RESULTS_TABLE} ({_RESULTS_DDL})")
    con.execute(
        f"DELETE FROM {RESULTS_TABLE} WHERE run_id = ? AND period = ? AND dataset = ?",
        [run_id, period, dataset],
    )
    if not rows:
        return 0
    now = datetime.now(UTC).replace(tzinfo=None)
    table = pa.Table.from_pylist(
        [
            {
                "run_id": run_id,
                "period": period,
                "dataset": dataset,
                "rule_id": r["rule_id"],
                "column": r.get("column"),
                "expectation": r["expectation"],
                "success": bool(r["success"]),
                "element_count": r.get("element_count"),
                "unexpected_count": r.get("unexpected_count"),
                "unexpected_percent": r.get("unexpected_percent"),
                "error": r.get("error"),
                "recorded_at": now,
            }
            for r in rows
        ],
        schema=_RESULTS_ARROW,
    )
    return insert_arrow(con, RESULTS_TABLE, table)
