"""The contracts as data: YAML files loaded into typed models (docs/architecture.md, "Contracts").

A contracts folder holds `classification.yaml` (levels and their default masking),
`divisions.yaml` (the division registry's file, edition and reference date), `entities/*.yaml`
(canonical entities, each column with its type, rule, category and level) and `sources/*.yaml`
(one file per department source: where it is, its record key, how to read it and how its columns
map to an entity). A new source is a new file. Every error names the file, the key and what is
expected, so a data engineer can fix the YAML without reading this code.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import duckdb
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SHIPPED = Path(str(resources.files("onetable.schemas")))
HISTORY_COLUMNS = ("valid_from", "valid_to", "recorded_at")
_NAME = r"^[a-z][a-z0-9_]*$"
M = TypeVar("M", bound=BaseModel)


class ContractError(ValueError):
    """A contract file is missing, unreadable or does not match its format."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- classification (分类分级) ----------------------------------------------------------------


class Level(_Strict):
    """One classification level: GB/T 43697-2024 grades, with personal information split (PIPL)."""

    id: Annotated[str, Field(pattern=_NAME)]
    name_zh: str
    rank: int = Field(ge=1, description="higher is more protected; a dataset takes its max")
    mask: Literal["none", "partial", "pseudonym", "generalize", "drop"]
    description: str = ""


class Classification(_Strict):
    levels: list[Level]
    categories: list[str]

    @field_validator("levels")
    @classmethod
    def _unique_ranks(cls, levels: list[Level]) -> list[Level]:
        if len({lv.id for lv in levels}) != len(levels) or len({lv.rank for lv in levels}) != len(
            levels
        ):
            raise ValueError("level ids and ranks must be unique")
        return levels

    def level(self, level_id: str) -> Level:
        return next(lv for lv in self.levels if lv.id == level_id)


# --- canonical entities -----------------------------------------------------------------------


class Rule(_Strict):
    """At most one kind of check on a column's values."""

    regex: str | None = None
    values: list[str] | None = None
    code_table: str | None = None  # the canonical values of a code table (codes/<table>.yaml)
    min: float | date | None = None
    max: float | date | None = None
    checksum: Literal["cn_id_number", "credit_code"] | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Column(_Strict):
    type: Literal["string", "integer", "decimal", "boolean", "date", "timestamp"]
    required: bool = False
    rule: Rule | None = None
    category: str
    level: str
    personal: Literal["id_number", "name", "phone", "address", "birth_date", "other"] | None = None
    description_zh: str = ""


class Entity(_Strict):
    """A canonical entity. With `history`, every row is a business-time interval: valid_from,
    valid_to (exclusive, null while open) and recorded_at are added to its columns."""

    entity: Annotated[str, Field(pattern=_NAME)]
    name_zh: str
    key: list[str]
    history: bool = True
    columns: dict[str, Column]

    @field_validator("columns")
    @classmethod
    def _column_names(cls, columns: dict[str, Column]) -> dict[str, Column]:
        for name in columns:
            if not re.match(_NAME, name):
                raise ValueError(f"column name {name!r} must be lower_snake_case ASCII")
            if name in HISTORY_COLUMNS:
                raise ValueError(f"{name!r} is added by `history: true`; do not declare it")
        return columns

    @model_validator(mode="after")
    def _key_columns_exist(self) -> Entity:
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"key column(s) {missing} are not among the columns")
        return self

    def all_columns(self) -> dict[str, Column]:
        """The declared columns plus the business-time columns of a history."""
        if not self.history:
            return dict(self.columns)
        time = {"category": "元数据", "level": "internal"}
        return {
            **self.columns,
            "valid_from": Column(type="date", required=True, **time),
            "valid_to": Column(type="date", **time),
            "recorded_at": Column(type="timestamp", required=True, **time),
        }


# --- source mappings --------------------------------------------------------------------------


class SqlLocation(_Strict):
    kind: Literal["sql"]
    conn_id: Annotated[str, Field(pattern=_NAME)]  # credentials come from AIRFLOW_CONN_<ID>
    table: str | None = None
    query: str | None = None
    retries: int = Field(default=3, ge=0)  # attempts to connect beyond the first
    backoff_s: float = Field(default=1.0, ge=0)  # doubled after each failed attempt

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlLocation:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        return self


# the date in a file's name when the mapping declares none: 20260131 or 2026-01-31
NAME_DATE = r"(?P<year>(?:19|20)\d\d)-?(?P<month>0[1-9]|1[0-2])-?(?P<day>0[1-9]|[12]\d|3[01])"


class NameDate(_Strict):
    """A file's date is in its name: `name` is a regular expression with one group (a date
    written 20260131 or 2026-01-31) or the groups `year`, `month` and `day`."""

    name: str = NAME_DATE

    @field_validator("name")
    @classmethod
    def _groups(cls, value: str) -> str:
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if pattern.groups != 1 and set(pattern.groupindex) != {"year", "month", "day"}:
            raise ValueError(
                "give one group (the date), or the groups (?P<year>...), (?P<month>...) and "
                "(?P<day>...)"
            )
        return value


class ColumnDate(_Strict):
    """A file's date is the latest date in one of its columns; `formats` as for `convert: date`."""

    column: str
    formats: list[str] = []


class FileLocation(_Strict):
    """Files in a folder: a department share read in place, or a drop folder emptied after landing.

    Each file is extracted once (by checksum) as its own window, ending at midnight after the
    file's date, in date order. `date` says how that date is known, never from the file's
    modification time: `{name: <regex>}`, the date in its name (the default: `20260131` or
    `2026-01-31`; a name without one fails the source); `{column: <source column>, formats: [...]}`,
    the latest date in that column of the file; or `delivered`, the period being run: a file not
    landed yet stands for the period it is first found in.
    """

    kind: Literal["file"]
    path: str  # a glob below the data root, e.g. civil_affairs/*.csv
    format: Literal["csv", "xlsx", "json", "jsonl", "parquet"]
    date: NameDate | ColumnDate | Literal["delivered"] = NameDate()
    encoding: str | None = None  # csv: detected when absent (UTF-8, UTF-8 with BOM, else GB18030)
    delimiter: str | None = None  # csv: sniffed when absent
    sheet: str | None = None  # xlsx: one sheet; every sheet with a matching header when absent
    records: str | None = None  # json: dotted key of the record list in an object document
    after_landing: Literal["keep", "move", "delete"] = "keep"  # a drop folder: move or delete
    archive: str | None = None  # with `move`: the folder (below the data root) landed files go to

    @model_validator(mode="after")
    def _archive_with_move(self) -> FileLocation:
        if (self.after_landing == "move") != (self.archive is not None):
            raise ValueError("`archive` is needed with `after_landing: move`, and only then")
        return self


class HttpLocation(_Strict):
    """A paged JSON API of the data-exchange platform.

    Paging ends at an empty page, at a page whose next link (`next_link`) is null or empty, or
    once the records read reach the API's own count (`total`); never at a short page, since a
    server may cap its page size below `page_size`. When the API gives a total, a read whose
    records do not add up to it fails the source and nothing of its window is committed. A page
    without the `total` or `next_link` key simply gives none. `pagination: none` is one request
    to an API that does not page.
    """

    kind: Literal["http"]
    url: str  # a full URL, or a path (`/residents`) on the host of the connection `conn_id`
    conn_id: Annotated[str, Field(pattern=_NAME)] | None = None  # a bearer token in its password
    pagination: Literal["page", "offset", "cursor", "none"] = "page"
    page_size: int = Field(default=500, ge=1)
    items: str = "items"  # dotted key of the record list in a page
    next_cursor: str = "next_cursor"  # cursor pagination: dotted key of the next cursor
    total: str | None = "total"  # dotted key of the API's count of all the read's records
    next_link: str | None = "next"  # page or offset: dotted key of the next page's URL
    page_param: str = "page"
    size_param: str = "size"
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    since_param: str | None = None  # cursor mode: the window's start, ISO 8601
    until_param: str | None = None  # cursor mode: the window's end
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _host_known(self) -> HttpLocation:
        if self.url.startswith("/") and self.conn_id is None:
            raise ValueError("a `url` that is a path needs `conn_id`, the connection with its host")
        return self


class RecordKey(_Strict):
    """The department's own key, or a hash of named identity columns when it has none (then a
    typo fixed in those columns reads as a delete plus an insert)."""

    column: str | None = None
    hash_of: list[str] | None = None
    # a key one delivery holds more than once: keep the row latest by this column (a date or
    # time), quarantine the others; without it every copy is quarantined but for exact copies
    latest_by: str | None = None

    @model_validator(mode="after")
    def _one(self) -> RecordKey:
        if (self.column is None) == (self.hash_of is None):
            raise ValueError("give exactly one of `column` or `hash_of`")
        return self

    def source_columns(self) -> list[str]:
        named = [self.column] if self.column else list(self.hash_of or [])
        return named + ([self.latest_by] if self.latest_by else [])


class ReadMode(_Strict):
    """Incremental by a cursor column over [start, end) windows, or a full snapshot diffed."""

    mode: Literal["cursor", "snapshot"]
    cursor: str | None = None
    overlap: timedelta = timedelta(days=1)
    # the share of the last snapshot's records one delivery may end; a delivery that ends more
    # (or all of them: a header-only file) is held, not landed (1 turns the guard off)
    max_shrink: float = Field(0.2, ge=0, le=1)

    @field_validator("overlap", mode="before")
    @classmethod
    def _parse_overlap(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+)\s*(second|minute|hour|day)s?\s*", value)
            if not match:
                raise ValueError(
                    "write the overlap as a number and a unit, e.g. `1 day`, `6 hours`"
                )
            return timedelta(**{match[2] + "s": int(match[1])})
        return value

    @model_validator(mode="after")
    def _cursor_given(self) -> ReadMode:
        if self.mode == "cursor" and not self.cursor:
            raise ValueError("mode `cursor` needs `cursor: <column>`")
        if self.mode == "snapshot" and self.cursor:
            raise ValueError("mode `snapshot` takes no `cursor`")
        return self


class Deleted(_Strict):
    """A status column whose values end a record (注销, 迁出)."""

    column: str
    values: list[str] = Field(min_length=1)


class EndedOn(_Strict):
    """A date column that ends a record from the period whose reference date it has reached."""

    column: str
    formats: list[str] = []  # tried in order, before the usual date spellings


class MapUnknown(_Strict):
    map: str  # the canonical value an unknown code becomes (flagged `code_unknown`)


class Mapping(_Strict):
    """Where a source column goes: `column` of the source's entity, `entity.column` when one
    department row describes several entities (a person and their key-group membership), or
    `role.column` for a second person or address the row names (`Source.roles`)."""

    to: str
    convert: Literal[
        "text",
        "id_number",
        "credit_code",
        "name",
        "date",
        "phone",
        "integer",
        "code",
        "address_village",
    ] = "text"
    formats: list[str] = []  # for `date`: the formats this department writes, tried in order
    values: dict[str, str] = {}  # for `code`: department value -> canonical value
    table: str | None = None  # for `code`: the code table (codes/<table>.yaml) of the values
    unknown: Literal["keep", "quarantine"] | MapUnknown = "keep"  # for `code`: an unknown value
    split: str | None = Field(None, min_length=1)  # for `code`: characters between values

    @field_validator("values", mode="before")
    @classmethod
    def _text_values(cls, values: Any) -> Any:
        """YAML reads `1: 男` as a number; a department's code is text."""
        if isinstance(values, dict):
            return {str(k): str(v) if isinstance(v, int | float) else v for k, v in values.items()}
        return values

    @model_validator(mode="after")
    def _code_options(self) -> Mapping:
        given = [k for k in ("table", "split") if getattr(self, k) is not None]
        given += ["unknown"] if self.unknown != "keep" else []
        if given and self.convert != "code":
            raise ValueError(f"{', '.join(given)} need(s) `convert: code`")
        if self.convert == "address_village" and self.to.rpartition(".")[2] != "village_code":
            raise ValueError(
                "`convert: address_village` gives a village code: map it to village_code"
            )
        return self


class Role(_Strict):
    """A second person or address a row names (a landlord, a registered address). A person role
    with `resident: false` identifies the person but is no evidence that they live here."""

    entity: str
    resident: bool = True


class Target(BaseModel):
    """Where one mapping puts its value: the entity and column, the role (None for the row's own
    entities) and the staged column's name (`role__column` for a role)."""

    model_config = ConfigDict(frozen=True)

    entity: str
    column: str
    role: str | None = None

    @property
    def staged(self) -> str:
        return f"{self.role}__{self.column}" if self.role else self.column


def _as_list(value: Any) -> Any:
    """A column's value is one mapping or a list of them (one column, several targets)."""
    if isinstance(value, dict):
        return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
    return value


class Source(_Strict):
    source: Annotated[str, Field(pattern=_NAME)]
    department: str
    name_zh: str
    entity: str
    location: Annotated[SqlLocation | FileLocation | HttpLocation, Field(discriminator="kind")]
    record_key: RecordKey
    read: ReadMode
    deleted: Deleted | None = None
    ended_on: EndedOn | None = None
    required: list[str] = []  # source columns whose absence fails the source (schema drift)
    # new source columns: a DuckDB SQL expression over the row's landed (text) columns each
    derived: dict[str, str] = {}
    roles: dict[Annotated[str, Field(pattern=_NAME)], Role] = {}
    columns: Annotated[dict[str, list[Mapping]], BeforeValidator(_as_list)]
    # required: a period with nothing new from the source is not published; optional: a warning
    delivery: Literal["required", "optional"] = "optional"
    constants: dict[str, str] = {}  # target -> value every record of the source has (group: 残疾)

    @field_validator("columns")
    @classmethod
    def _some_mapping(cls, columns: dict[str, list[Mapping]]) -> dict[str, list[Mapping]]:
        empty = [name for name, mappings in columns.items() if not mappings]
        if empty:
            raise ValueError(f"column(s) {', '.join(empty)} map to nothing: give a mapping")
        return columns

    def target_of(self, to: str) -> Target:
        """The target a `to` (or a constant's key) names."""
        head, _, column = to.rpartition(".")
        if head in self.roles:
            return Target(entity=self.roles[head].entity, column=column, role=head)
        return Target(entity=head or self.entity, column=column)

    def targets(self, source_column: str) -> list[tuple[str, str]]:
        """(entity, column) each mapping of a source column goes to."""
        return [
            (t.entity, t.column)
            for t in (self.target_of(m.to) for m in self.columns[source_column])
        ]

    def mappings(self) -> list[tuple[str, Mapping, Target]]:
        """Every (source column, mapping, target), in mapping order."""
        return [(src, m, self.target_of(m.to)) for src, ms in self.columns.items() for m in ms]

    def declared_columns(self) -> list[str]:
        """The department's columns the mapping names (derived ones are not among them)."""
        mapped = [c for c in self.columns if c not in self.derived]
        return list(dict.fromkeys(mapped + self.named_columns()))

    def named_columns(self) -> list[str]:
        """The department's columns named outside `columns`: the required ones, the record
        key's, the cursor, the status and the end date."""
        named = [*self.required, *self.record_key.source_columns()]
        named += [c for c in (self.read.cursor,) if c]
        return named + [x.column for x in (self.deleted, self.ended_on) if x]


# --- code tables ------------------------------------------------------------------------------


class CodeTable(_Strict):
    """A code table: each canonical value with the synonyms departments write for it. A county
    extends one by giving its own file of the same name (`load_contracts(codes_dir=...)`)."""

    table: Annotated[str, Field(pattern=_NAME)]
    name_zh: str
    description: str = ""
    values: dict[str, list[str]] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _text(cls, values: Any) -> Any:
        """YAML reads `男: [1, M]` with a number; a code is text. `值:` with no synonyms is []."""
        if not isinstance(values, dict):
            return values
        return {
            str(k): [str(x) for x in v] if isinstance(v, list) else [] if v is None else v
            for k, v in values.items()
        }

    @field_validator("values")
    @classmethod
    def _one_meaning(cls, values: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for value, synonyms in values.items():
            for word in (value, *synonyms):
                other = seen.setdefault(word.casefold(), value)
                if other != value:
                    raise ValueError(f"{word!r} is given for both {other!r} and {value!r}")
        return values

    def lookup(self) -> dict[str, str]:
        """Each canonical value and synonym, case-folded -> its canonical value."""
        return {
            word.casefold(): value
            for value, synonyms in self.values.items()
            for word in (value, *synonyms)
        }


# --- division registry ------------------------------------------------------------------------


class Divisions(_Strict):
    """Where the division registry is, which edition it is, and whether its codes are real."""

    path: str
    edition: str
    reference_date: date
    synthetic: bool = False
    notes: str = ""

    def resolve(self, root: Path) -> Path:
        path = Path(self.path)
        return path if path.is_absolute() else root / path


# --- loading ----------------------------------------------------------------------------------


class Contracts(BaseModel):
    model_config = ConfigDict(frozen=True)

    root: Path
    sources_dir: Path  # `<root>/sources`, or a deployment's own folder of source mappings
    divisions_file: Path  # `<root>/divisions.yaml`, or a deployment's own registry
    classification: Classification
    divisions: Divisions
    entities: dict[str, Entity]
    sources: dict[str, Source]
    codes: dict[str, CodeTable] = {}  # the code tables by name, a deployment's over the shipped

    def source_file(self, name: str) -> Path:
        """The file source `name` was read from (its name is the file's, checked on load)."""
        return self.sources_dir / f"{name}.yaml"

    def divisions_path(self) -> Path:
        """The registry's CSV: `divisions.yaml`'s `path`, relative to that file's folder."""
        return self.divisions.resolve(self.divisions_file.parent)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ContractError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ContractError(
            f"{path}:{line} not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None


def _parse(model: type[M], path: Path) -> M:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ContractError(
            f"{path}: expected a mapping of keys at the top, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"]) or "(top)"
            got = (
                f" (got {err['input']!r})"
                if err["type"] != "missing" and _short(err["input"])
                else ""
            )
            lines.append(f"{path}: {key}: {err['msg']}{got}")
        raise ContractError("\n".join(lines)) from None


def _short(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(str(value)) <= 60


def _cross_check(contracts: Contracts) -> None:
    root = contracts.root
    levels = {lv.id for lv in contracts.classification.levels}
    categories = set(contracts.classification.categories)
    problems = []
    for name, entity in contracts.entities.items():
        where = root / "entities" / f"{name}.yaml"
        for col_name, col in entity.columns.items():
            if col.level not in levels:
                problems.append(
                    f"{where}: columns.{col_name}.level: {col.level!r} is not a level of "
                    f"classification.yaml (one of {', '.join(sorted(levels))})"
                )
            table = col.rule.code_table if col.rule else None
            if table is not None and table not in contracts.codes:
                problems.append(
                    f"{where}: columns.{col_name}.rule.code_table: {table!r} is not a code table "
                    f"(one of {', '.join(sorted(contracts.codes))})"
                )
            if col.category not in categories:
                problems.append(
                    f"{where}: columns.{col_name}.category: {col.category!r} is not a category of "
                    f"classification.yaml (one of {', '.join(contracts.classification.categories)})"
                )
    for name, source in contracts.sources.items():
        problems += _check_source(contracts, contracts.source_file(name), source)
    if not contracts.divisions_path().exists():
        problems.append(
            f"{contracts.divisions_file}: path: {contracts.divisions.path!r} does not exist"
        )
    if problems:
        raise ContractError("\n".join(problems))


def _key(src_col: str, i: int, source: Source) -> str:
    """The YAML key of a column's i-th mapping: `columns.X` for a lone one, `columns.X[i]`."""
    return f"columns.{src_col}" + (f"[{i}]" if len(source.columns[src_col]) > 1 else "")


def _check_source(contracts: Contracts, where: Path, source: Source) -> list[str]:
    """What is wrong with one source mapping against the entities and code tables."""
    entities = contracts.entities
    if source.entity not in entities:
        return [
            f"{where}: entity: {source.entity!r} is not an entity in entities/ "
            f"(one of {', '.join(sorted(entities))})"
        ]
    problems = [
        f"{where}: roles.{role}.entity: {r.entity!r} is not an entity in entities/ "
        f"(one of {', '.join(sorted(entities))})"
        for role, r in source.roles.items()
        if r.entity not in entities
    ] + [
        f"{where}: roles.{role}: a role may not be named like an entity"
        for role in source.roles
        if role in entities
    ]
    seen: dict[Target, str] = {}
    index = {src: 0 for src in source.columns}
    for src_col, mapping, target in source.mappings():
        key = _key(src_col, index[src_col], source)
        index[src_col] += 1
        entity = entities.get(target.entity)
        if entity is None:
            problems.append(
                f"{where}: {key}.to: {mapping.to!r} names no entity in entities/ or role in "
                f"roles (one of {', '.join(sorted([*entities, *source.roles]))})"
            )
            continue
        if target.column in entity.key and target.column.endswith("_id"):  # stable ids: linkage's
            problems.append(
                f"{where}: {key}.to: {target.column!r} is the key of entity "
                f"{entity.entity!r}, which linkage assigns; the department's own key belongs "
                "in record_key"
            )
        elif target.column not in entity.columns:
            problems.append(
                f"{where}: {key}.to: {target.column!r} is not a column of entity {entity.entity!r}"
            )
        if target in seen:
            problems.append(
                f"{where}: {key}.to: {mapping.to!r} is also the target of {seen[target]}; "
                "map each target from one column"
            )
        seen.setdefault(target, key)
        problems += _check_code(contracts, where, key, mapping)
    for target_name in source.constants:
        target = source.target_of(target_name)
        entity = entities.get(target.entity)
        if entity is None or target.column not in entity.columns:
            problems.append(
                f"{where}: constants.{target_name}: not a column of entity {target.entity!r}"
            )
        elif target in seen:
            problems.append(
                f"{where}: constants.{target_name}: also the target of {seen[target]}; "
                "map each target once"
            )
    return problems + _check_derived(where, source)


def _check_code(contracts: Contracts, where: Path, key: str, mapping: Mapping) -> list[str]:
    """A code mapping's table exists and its `values:` and `unknown: {map: ...}` give canonical
    values of it."""
    if mapping.table is None:
        return []
    table = contracts.codes.get(mapping.table)
    if table is None:
        return [
            f"{where}: {key}.table: {mapping.table!r} is not a code table "
            f"(one of {', '.join(sorted(contracts.codes))})"
        ]
    canonical = ", ".join(table.values)
    problems = [
        f"{where}: {key}.values.{raw}: {value!r} is not a value of code table "
        f"{table.table!r} ({canonical})"
        for raw, value in mapping.values.items()
        if value not in table.values
    ]
    if isinstance(mapping.unknown, MapUnknown) and mapping.unknown.map not in table.values:
        problems.append(
            f"{where}: {key}.unknown.map: {mapping.unknown.map!r} is not a value of code table "
            f"{table.table!r} ({canonical})"
        )
    return problems


def _check_derived(where: Path, source: Source) -> list[str]:
    """Each derived column an expression DuckDB binds over the source's declared columns (all
    text), that names no other derived column and no column the department sends."""
    if not source.derived:
        return []
    declared = source.declared_columns()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE row_ ({', '.join(f'{quote(c)} VARCHAR' for c in declared)})")
    problems = []
    for name, expression in source.derived.items():
        key = f"derived.{name}"
        if name in source.named_columns():
            problems.append(
                f"{where}: {key}: {name!r} is a column the department sends; give the derived "
                "column a name of its own"
            )
            continue
        sql = f"SELECT {derived_sql(expression)}"
        try:
            statements = con.extract_statements(sql)
            if len(statements) != 1:
                raise duckdb.ParserException("one expression expected, not several statements")
            con.execute(f"{sql} FROM row_ LIMIT 0")
        except duckdb.Error as exc:
            others = [d for d in source.derived if d != name and d in expression]
            hint = (
                f" (derived column(s) {', '.join(others)} may not be used: write the "
                "expression over the department's columns)"
                if others
                else f" (it may use the columns the mapping names: {', '.join(declared)})"
            )
            message = str(exc).splitlines()[0]
            problems.append(f"{where}: {key}: {expression!r} does not bind: {message}{hint}")
    con.close()
    return problems


def quote(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def derived_sql(expression: str) -> str:
    """A derived column's expression as it is checked and computed: one parenthesised term."""
    return f"({expression})"


def _load_folder(model: type[M], folder: Path, name_key: str) -> dict[str, M]:
    out: dict[str, M] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        item = _parse(model, path)
        name = getattr(item, name_key)
        if name != path.stem:
            raise ContractError(
                f"{path}: {name_key}: {name!r} must equal the file name {path.stem!r}"
            )
        out[name] = item
    return out


def shipped_codes() -> dict[str, CodeTable]:
    """The code tables shipped in `onetable.schemas` (`codes/*.yaml`)."""
    return _load_folder(CodeTable, SHIPPED / "codes", "table")


def _load_codes(root: Path, codes_dir: Path | None) -> dict[str, CodeTable]:
    """The code tables of `<root>/codes` (the shipped ones when the root has none), with those of
    `codes_dir` in place of the tables of the same name."""
    codes = (
        _load_folder(CodeTable, root / "codes", "table")
        if (root / "codes").is_dir()
        else shipped_codes()
    )
    if codes_dir is not None:
        if not Path(codes_dir).is_dir():
            raise ContractError(f"{codes_dir}: code tables folder not found")
        codes |= _load_folder(CodeTable, Path(codes_dir), "table")
    return codes


def load_contracts(
    root: Path | None = None, sources_dir: Path | None = None, codes_dir: Path | None = None,
    divisions_file: Path | None = None,
) -> Contracts:  # fmt: skip
    """Load and cross-check a contracts folder (default: the one shipped in `onetable.schemas`).

    A deployment (schemas/deployment.py) gives its own source mappings (`sources_dir`, instead of
    `<root>/sources`), code tables (`codes_dir`, each replacing the shipped table of its name) and
    division registry (`divisions_file`, instead of `<root>/divisions.yaml`).
    """
    root = Path(root) if root else SHIPPED
    if not root.is_dir():
        raise ContractError(f"{root}: contracts folder not found")
    sources_dir = Path(sources_dir) if sources_dir else root / "sources"
    divisions_file = Path(divisions_file) if divisions_file else root / "divisions.yaml"
    contracts = Contracts(
        root=root,
        sources_dir=sources_dir,
        divisions_file=divisions_file,
        classification=_parse(Classification, root / "classification.yaml"),
        divisions=_parse(Divisions, divisions_file),
        entities=_load_folder(Entity, root / "entities", "entity"),
        sources=_load_folder(Source, sources_dir, "source"),
        codes=_load_codes(root, codes_dir),
    )
    _cross_check(contracts)
    return contracts
