"""The device registry: each device with its grid, kind, place (coordinates and address), vendor/model, the
feed it arrives through and notes; CSV and XLSX in and out (openpyxl, read-only and write-only modes, so
a large sheet is streamed); what each agent gets for its grids (with an etag); and the state each device
shows on the board and the map.

Devices are written in one transaction per call: an import with a bad row changes nothing and says which
rows are wrong and why.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from gridwatch.core.alert import Place
from gridwatch.core.kinds import FeedKind
from gridwatch.core.names import NAME
from hub.analysis import tables
from hub.store.models import Device

FIELDS = ("id", "kind", "grid", "name", "lat", "lon", "address", "vendor", "model", "feed", "gateway", "notes",
          "camera", "preset")
"""The columns of an import or export, in order (a sheet's first row names them; order is free on import)."""

DeviceState = Literal["ok", "alarm", "offline", "unknown", "maintenance"]
XLSX = tables.XLSX


class DeviceIn(BaseModel):
    """A device as the API, an import row or an agent's list carries it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=NAME.pattern)
    kind: FeedKind = "sensor"
    grid: str = Field(pattern=NAME.pattern)
    name: str = Field("", max_length=200)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    address: str = Field("", max_length=500)
    vendor: str = Field("", max_length=64)
    model: str = Field("", max_length=64)
    feed: str = Field("", max_length=64)
    gateway: str | None = Field(None, pattern=NAME.pattern)
    notes: str = Field("", max_length=4000)
    camera: str | None = Field(None, pattern=NAME.pattern, description="视频复核: the camera that covers this device")
    preset: int | None = Field(None, ge=1, le=255, description="that camera's preset (GB/T 28181 A.3.5: 1-255) "
                                                               "that looks at this device")

    @model_validator(mode="after")
    def _linked(self) -> DeviceIn:
        if self.preset is not None and self.camera is None:
            raise ValueError("preset: a preset needs the camera it belongs to")
        if self.camera == self.id:
            raise ValueError("camera: a device is not its own camera")
        return self

    @field_validator("name", "address", "vendor", "model", "feed", "notes")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("must not contain a NUL character")
        return v.strip()

    def place(self) -> Place:
        return Place(lat=self.lat, lon=self.lon, address=self.address, name=self.name)


def unknown_cameras(s: Session, devices: Sequence[DeviceIn]) -> list[str]:
    """Problems with the cameras these devices name: each must be a camera of the registry or of the same batch."""
    named = {d.camera for d in devices if d.camera is not None}
    if not named:
        return []
    batch = {d.id: d.kind for d in devices}
    kinds: dict[str, str] = {i: k for i, k in s.execute(select(Device.id, Device.kind).where(Device.id.in_(named)))}
    kinds |= {i: k for i, k in batch.items() if i in named}
    out = []
    for d in devices:
        if d.camera is not None and kinds.get(d.camera) != "camera":
            out.append(f"{d.id}: camera: {d.camera!r} is "
                       f"{'a ' + kinds[d.camera] + ', not a camera' if d.camera in kinds else 'not in the registry'}")
    return out


def device_in(row: Device) -> DeviceIn:
    return DeviceIn.model_validate({f: getattr(row, f) for f in FIELDS})


def upsert(s: Session, devices: Sequence[DeviceIn], now: datetime) -> tuple[int, int]:
    """Add or replace devices; (created, updated). A device written without its camera link (a gateway's
    catalog, a sheet without those columns or with them empty) keeps the link it has; the guard fields are the
    hub's own and are kept too."""
    ids = [d.id for d in devices]
    known = set(s.scalars(select(Device.id).where(Device.id.in_(ids)))) if ids else set()
    for d in devices:
        given = d.model_dump(exclude=set() if d.model_fields_set & {"camera", "preset"} else {"camera", "preset"})
        s.merge(Device(**given, updated_at=now))
    return len(set(ids) - known), len(known)


def get(s: Session, device_id: str) -> Device | None:
    return s.get(Device, device_id)


def remove(s: Session, device_id: str) -> bool:
    return (s.execute(delete(Device).where(Device.id == device_id)).rowcount or 0) > 0  # type: ignore[attr-defined]


def search(s: Session, *, grids: set[str] | None, q: str | None = None, kind: str | None = None,
           grid: str | None = None, limit: int = 500, offset: int = 0) -> tuple[int, list[Device]]:
    """Devices in these grids (None: all) whose id, name, address, vendor, model or notes hold `q`."""
    where: list[ColumnElement[bool]] = []
    if grids is not None:
        where.append(Device.grid.in_(grids))
    if grid is not None:
        where.append(Device.grid == grid)
    if kind is not None:
        where.append(Device.kind == kind)
    if q:
        like = f"%{q.lower()}%"
        where.append(or_(*(func.lower(c).like(like) for c in (Device.id, Device.name, Device.address,
                                                                Device.vendor, Device.model, Device.notes))))
    total = s.scalar(select(func.count()).select_from(Device).where(*where)) or 0
    rows = s.scalars(select(Device).where(*where).order_by(Device.grid, Device.id).limit(limit).offset(offset))
    return total, list(rows)


def places(s: Session, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The registry's place of each of these devices that has one."""
    wanted = set(ids)
    if not wanted:
        return {}
    out = {}
    for d in s.scalars(select(Device).where(Device.id.in_(wanted))):
        if d.lat is not None or d.address or d.name:
            out[d.id] = Place(lat=d.lat, lon=d.lon, address=d.address, name=d.name).model_dump()
    return out


def for_agent(s: Session, grids: Sequence[str]) -> tuple[str, list[dict[str, Any]]]:
    """The devices of these grids (all, when none are named) and an etag that changes when any of them does."""
    q = select(Device).order_by(Device.id)
    if grids:
        q = q.where(Device.grid.in_(grids))
    rows = [device_in(d).model_dump(exclude_defaults=True) for d in s.scalars(q)]
    h = hashlib.sha256()
    for r in rows:
        h.update(repr(sorted(r.items())).encode())
    return h.hexdigest()[:16], rows


# ---- files -------------------------------------------------------------------------------------------
class ImportError_(ValueError):
    """Rows that cannot be taken, one reason per line (`row 7: lat: ...`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:20]))
        self.problems = problems


def parse_rows(rows: Iterator[Sequence[Any]], known_grids: set[str]) -> list[DeviceIn]:
    """Rows of a sheet (the first names the columns) as devices; raises ImportError_ listing every bad row."""
    try:
        header = [str(h or "").strip().lower() for h in next(rows)]
    except StopIteration:
        raise ImportError_(["the file is empty (expected a header row naming the columns)"]) from None
    unknown = [h for h in header if h and h not in FIELDS]
    missing = [f for f in ("id", "grid") if f not in header]
    if unknown or missing:
        raise ImportError_([f"header: unknown columns {unknown} (known: {', '.join(FIELDS)})"] if unknown else []
                           + ([f"header: missing columns {missing}"] if missing else []))
    out, problems, seen = [], [], dict[str, int]()
    for n, row in enumerate(rows, start=2):
        cells = {h: tables.uninert(row[i]) for i, h in enumerate(header) if h and i < len(row)}
        data = {k: (v.strip() if isinstance(v, str) else v) for k, v in cells.items()
                if v is not None and not (isinstance(v, str) and not v.strip())}
        if not data:
            continue  # a blank line
        try:
            d = DeviceIn.model_validate(data)
        except ValidationError as exc:
            problems += [f"row {n}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            continue
        if d.grid not in known_grids:
            problems.append(f"row {n}: grid: {d.grid!r} is not a grid of the org tree")
        if d.id in seen:
            problems.append(f"row {n}: id: {d.id!r} again (first on row {seen[d.id]})")
        seen.setdefault(d.id, n)
        out.append(d)
    if problems:
        raise ImportError_(problems)
    return out


def read_csv(data: bytes) -> Iterator[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportError_(["the CSV is not UTF-8 (save it as CSV UTF-8)"]) from None
    return iter(csv.reader(io.StringIO(text)))


def read_xlsx(data: bytes) -> Iterator[Sequence[Any]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a file that is not a workbook
        raise ImportError_([f"not an XLSX workbook: {exc}"]) from None
    ws = wb.worksheets[0]
    return ws.iter_rows(values_only=True)


def _cells(d: Device) -> list[Any]:
    return ["" if getattr(d, f) is None else getattr(d, f) for f in FIELDS]


def csv_chunks(devices: Iterable[Device]) -> Iterator[bytes]:
    return tables.csv_chunks(FIELDS, (_cells(d) for d in devices))


def xlsx_bytes(devices: Iterable[Device]) -> bytes:
    return tables.xlsx_bytes(FIELDS, (_cells(d) for d in devices), "devices")
