"""Vietnam's official administrative units after the 2025 reform, and what became of each old ward, as plain data.

Two PyPI packages are read, and nothing is written by hand:
- `vietnam-provinces` holds the official list in force (34 provinces, 3,321 wards, communes and special zones, with the
  General Statistics Office codes). It is the authority for codes, names and division types.
- `vietnamadminunits` ships, as data files, the old structure (provinces, districts, 10,035 wards with centres and
  bounding boxes), the new units' centres and areas, and the conversion table: which old wards were merged wholly into
  one new unit and which were divided among several. Its parser and converter modules pull in shapely and geopy and
  take half a second to import, so the package is never imported: its folder is found with `importlib.util.find_spec`
  (which runs no code of it) and its files are read directly. `importlib.resources.files()` would import it.

The two packages identify the new units differently: the conversion table names them by a key made from the name
(`phuongtaytuu`), and `vietnamadminunits`' own new-unit table carries codes that for about 120 units differ from the
official list (for instance its 00226 is Văn Miếu - Quốc Tử Giám, officially 00196; official 00226 is Kim Liên). So a
new unit is tied to its official code by name within its province, never by that table's code, and its centre and area
follow the same tie. `OfficialData.notes` lists where the two packages disagree.

Old and new codes overlap (00613 was Phường Minh Khai and is now Phường Tây Tựu), so old units (`LegacyUnit`,
`legacy()`) and current ones (`OfficialUnit`, `unit()`) live in separate namespaces.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import json
import re
import sqlite3
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

EFFECTIVE = date(2025, 7, 1)


@dataclass(frozen=True)
class _Package:
    """An installable source of data: the module to look for, its distribution name and the version keng pins."""

    module: str
    distribution: str
    pin: str

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def install_hint(self) -> str:
        return f"pip install '{self.distribution}=={self.pin}'"


_PROVINCES = _Package("vietnam_provinces", "vietnam-provinces", "2025.10.1")
_ADMIN_UNITS = _Package("vietnamadminunits", "vietnamadminunits", "1.0.4")
_CONVERTER_FILE = "converter_2025.json"
_DATASET_FILE = "dataset.db"


def _source(*packages: _Package) -> str:
    return " + ".join(f"{p.distribution} {p.version() or '(not installed)'}" for p in packages)


SOURCE = _source(_PROVINCES, _ADMIN_UNITS)


class OfficialDataMissing(Exception):
    """A package holding the official data is not installed, or lacks the files keng reads."""


@dataclass(frozen=True)
class OfficialUnit:
    """A unit of the current (2025) official list: a province / centrally-run city, or a ward, commune, special zone."""

    code: str
    name: str  # full name with its type: "Phường Tây Tựu", "Xã Ô Diên", "Thành phố Hà Nội", "Tỉnh Cao Bằng"
    level: str  # "city" for a province or centrally-run city, "ward" for a phường, xã or đặc khu
    kind: str  # "phường", "xã", "đặc khu", "tỉnh", "thành phố trung ương"
    parent: str | None  # the province code for a ward, None for a province
    lat: float | None
    lon: float | None
    area_km2: float | None


@dataclass(frozen=True)
class LegacyUnit:
    """A ward or district of the structure in force before EFFECTIVE."""

    code: str
    name: str
    level: str  # "ward" or "district"
    parent: str | None  # the district code for a ward, the province code for a district
    province: str  # the (old) province code
    lat: float | None
    lon: float | None
    bounds: tuple[float, float, float, float] | None  # (lat_min, lon_min, lat_max, lon_max)


@dataclass(frozen=True)
class SuccessorPart:
    """A current unit that took in all or part of an old one."""

    code: str
    name: str
    lat: float | None
    lon: float | None
    default: bool  # takes the old unit's seat / main part (always True when the old unit was merged wholly)


@dataclass(frozen=True)
class Succession:
    """What became of one old ward on EFFECTIVE."""

    old: LegacyUnit
    divided: bool  # True: divided among several successors; False: merged wholly into one
    successors: tuple[SuccessorPart, ...]  # sorted by code; exactly one when not divided


class OfficialData:
    """Lookups over the official list, the old structure and the conversion table; every result is a frozen value."""

    def __init__(
        self,
        *,
        source: str,
        provinces: dict[str, OfficialUnit],
        wards: dict[str, OfficialUnit],
        legacy: dict[str, LegacyUnit],
        successions: dict[str, Succession],
        notes: tuple[str, ...],
    ) -> None:
        self.source = source
        self.effective = EFFECTIVE
        self.notes = notes  # where the two packages disagree, in words (for whoever compares the data)
        self._provinces = provinces
        self._wards = wards
        self._legacy = legacy
        self._successions = successions
        self._by_province: dict[str, list[OfficialUnit]] = defaultdict(list)
        for ward in sorted(wards.values(), key=lambda u: u.code):
            self._by_province[ward.parent or ""].append(ward)
        self._by_district: dict[str, list[LegacyUnit]] = defaultdict(list)
        for old in sorted(legacy.values(), key=lambda u: u.code):
            if old.level == "ward":
                self._by_district[old.parent or ""].append(old)

    def province(self, code: str) -> OfficialUnit | None:
        """A current province or centrally-run city by its two-digit code."""
        return self._provinces.get(code)

    def unit(self, code: str) -> OfficialUnit | None:
        """A current unit by code: a province (two digits) or a ward, commune or special zone (five digits)."""
        return self._provinces.get(code) or self._wards.get(code)

    def units(self, province: str) -> list[OfficialUnit]:
        """The current wards, communes and special zones of a province, by code."""
        return list(self._by_province.get(province, ()))

    def legacy(self, code: str) -> LegacyUnit | None:
        """An old ward (five digits) or district (three digits) by its code of before EFFECTIVE."""
        return self._legacy.get(code)

    def legacy_wards(self, district: str) -> list[LegacyUnit]:
        """The old wards of an old district, by code."""
        return list(self._by_district.get(district, ()))

    def succession(self, old_ward_code: str) -> Succession | None:
        """What became of an old ward; None when the package has no data for it.

        The five island districts that had no wards (Bạch Long Vĩ, Cồn Cỏ, Lý Sơn, Côn Đảo, Hoàng Sa) became special
        zones; their succession is found under the district code, with `old.level == "district"`.
        """
        return self._successions.get(old_ward_code)


@functools.cache
def load_official() -> OfficialData:
    """The official data, read once per process; raises OfficialDataMissing when a package is not installed."""
    return _load(_PROVINCES, _ADMIN_UNITS)


# --- reading ---------------------------------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _clean(name: str) -> str:
    """A name with its runs of whitespace collapsed (the official list has a few double spaces)."""
    return _SPACES.sub(" ", name).strip()


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", _clean(name)).replace("\u2019", "'").casefold()


def _ascii_key(name: str) -> str:
    """The name without marks, case, spaces or punctuation: "Phường Tây Tựu" -> "phuongtaytuu"."""
    decomposed = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    return _NOT_ALNUM.sub("", "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower())


def _parse_bounds(text: str | None) -> tuple[float, float, float, float] | None:
    """ "21.079735,105.725212 – 21.107403,105.747356" -> (lat_min, lon_min, lat_max, lon_max); None when absent."""
    if not text:
        return None
    corners = [part.strip() for part in text.replace("\u2013", "-").split(" - ")]
    if len(corners) != 2:
        return None
    try:
        (lat1, lon1), (lat2, lon2) = (tuple(float(v) for v in c.split(",")) for c in corners)
    except ValueError:
        return None
    return (min(lat1, lat2), min(lon1, lon2), max(lat1, lat2), max(lon1, lon2))


def _missing(package: _Package, what: str) -> OfficialDataMissing:
    return OfficialDataMissing(
        f"the official administrative units need the {package.distribution!r} package ({what}); "
        f"install it with: {package.install_hint()}"
    )


def _official_list(package: _Package) -> tuple[dict[str, OfficialUnit], dict[str, OfficialUnit]]:
    try:
        module = importlib.import_module(package.module)
    except ModuleNotFoundError as exc:
        raise _missing(package, "not installed") from exc
    try:
        province_rows: list[Any] = list(module.Province.iter_all())
        ward_rows: list[Any] = list(module.Ward.iter_all())
    except AttributeError as exc:
        raise _missing(package, f"this version has no Province/Ward list: {exc}") from exc
    provinces: dict[str, OfficialUnit] = {}
    for p in province_rows:
        kind = str(p.division_type.value)
        name = _clean(p.name)
        if kind == "tỉnh" and not name.startswith("Tỉnh "):
            name = f"Tỉnh {name}"
        code = f"{int(p.code.value):02d}"
        provinces[code] = OfficialUnit(code, name, "city", kind, None, None, None, None)
    wards: dict[str, OfficialUnit] = {}
    for w in ward_rows:
        code = f"{int(w.code.value):05d}"
        parent = f"{int(w.province_code.value):02d}"
        wards[code] = OfficialUnit(code, _clean(w.name), "ward", str(w.division_type.value), parent, None, None, None)
    return provinces, wards


def _data_folder(package: _Package) -> Path:
    try:
        spec = importlib.util.find_spec(package.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing(package, "not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    for file in (_CONVERTER_FILE, _DATASET_FILE):
        if not (folder / file).is_file():
            raise _missing(package, f"no data/{file} in {folder.parent}")
    return folder


@dataclass(frozen=True)
class _NewRow:
    """A row of vietnamadminunits' table of new units."""

    province_code: str
    province_key: str
    code: str
    name: str
    kind: str
    key: str
    lat: float | None
    lon: float | None
    area_km2: float | None


def _official_code(
    row: _NewRow, candidates: dict[tuple[str, str], list[OfficialUnit]]
) -> tuple[OfficialUnit | None, str | None]:
    """The official unit a new-unit row names, matched by name within its province; and a note when unsure or absent.

    Names that differ only in marks (Văn Lang / Văn Lăng) share an ASCII key; the exact name, then the code, decide.
    """
    found = candidates.get((row.province_code, _ascii_key(row.name)), [])
    if len(found) > 1:
        found = [u for u in found if _fold(u.name) == _fold(row.name)] or [u for u in found if u.code == row.code]
    if len(found) == 1:
        return found[0], None
    return None, f"vietnamadminunits unit {row.code} {row.name!r} ({row.province_code}) matches no single official unit"


def _load(provinces_package: _Package, units_package: _Package) -> OfficialData:
    """Read both packages (the official list first, so a missing package is named before any file is opened)."""
    provinces, wards = _official_list(provinces_package)
    folder = _data_folder(units_package)
    notes: list[str] = []

    connection = sqlite3.connect(f"{(folder / _DATASET_FILE).as_uri()}?mode=ro", uri=True)
    try:
        new_rows = [
            _NewRow(*r)
            for r in connection.execute(
                "SELECT provinceCode, provinceKey, wardCode, ward, wardType, wardKey, wardLat, wardLon, wardAreaKm2"
                " FROM admin_units"
            )
        ]
        province_centres = connection.execute(
            "SELECT provinceCode, MIN(provinceLat), MIN(provinceLon) FROM admin_units GROUP BY provinceCode"
        ).fetchall()
        legacy_rows = connection.execute(
            "SELECT provinceCode, provinceKey, districtCode, district, districtKey, districtLat, districtLon,"
            " districtBounds, wardCode, ward, wardKey, wardLat, wardLon, wardBounds FROM admin_units_legacy"
        ).fetchall()
    finally:
        connection.close()
    converter = json.loads((folder / _CONVERTER_FILE).read_text(encoding="utf-8"))

    # Current units: names and types from the official list, centres and areas from the row of the same name.
    candidates: dict[tuple[str, str], list[OfficialUnit]] = defaultdict(list)
    for ward in wards.values():
        candidates[(ward.parent or "", _ascii_key(ward.name))].append(ward)
    by_key: dict[tuple[str, str], str] = {}  # (new province key, new ward key) -> official code
    placed: dict[str, _NewRow] = {}
    for row in new_rows:
        official, note = _official_code(row, candidates)
        if official is None:
            notes.append(note or "")
            continue
        if official.code in placed:
            notes.append(f"official unit {official.code} is named by two vietnamadminunits rows; the first is kept")
            continue
        placed[official.code] = row
        by_key[(row.province_key, row.key)] = official.code
        if row.code != official.code:
            notes.append(f"vietnamadminunits code {row.code} {row.name!r} is official code {official.code}")
        if row.kind.casefold() != official.kind:
            notes.append(
                f"{official.code} {official.name!r}: vietnamadminunits says {row.kind!r}, the list {official.kind!r}"
            )
    for code, ward in list(wards.items()):
        centre = placed.get(code)
        if centre is None:
            notes.append(f"official unit {code} {ward.name!r} has no centre in vietnamadminunits")
            continue
        wards[code] = OfficialUnit(
            ward.code, ward.name, ward.level, ward.kind, ward.parent, centre.lat, centre.lon, centre.area_km2
        )
    for code, lat, lon in province_centres:
        if code in provinces:
            p = provinces[code]
            provinces[code] = OfficialUnit(p.code, p.name, p.level, p.kind, None, lat, lon, None)

    # The old structure; an old unit's full key is "provinceKey_districtKey_wardKey" ("..._" for a wardless district).
    legacy: dict[str, LegacyUnit] = {}
    by_old_key: dict[str, LegacyUnit] = {}
    for pc, pkey, dc, dname, dkey, dlat, dlon, dbounds, wc, wname, wkey, wlat, wlon, wbounds in legacy_rows:
        if dc not in legacy:
            legacy[dc] = LegacyUnit(dc, _clean(dname), "district", pc, pc, dlat, dlon, _parse_bounds(dbounds))
        if wc is None:
            by_old_key[f"{pkey}_{dkey}_"] = legacy[dc]
            continue
        ward_unit = LegacyUnit(wc, _clean(wname), "ward", dc, pc, wlat, wlon, _parse_bounds(wbounds))
        legacy[wc] = ward_unit
        by_old_key[f"{pkey}_{dkey}_{wkey}"] = ward_unit

    def part(province_key: str, ward_key: str, default: bool) -> SuccessorPart | None:
        code = by_key.get((province_key, ward_key))
        official = wards.get(code or "")
        if official is None:
            notes.append(f"conversion names {province_key}/{ward_key}, which is no known current unit")
            return None
        return SuccessorPart(official.code, official.name, official.lat, official.lon, default)

    def old_unit(old_key: str) -> LegacyUnit | None:
        old = by_old_key.get(old_key)
        if old is None:
            notes.append(f"conversion names old unit {old_key}, which the old structure lacks")
        return old

    successions: dict[str, Succession] = {}
    for province_key, merged in converter["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward_key, old_keys in merged.items():
            whole = part(province_key, ward_key, True)
            for old_key in old_keys:
                old = old_unit(old_key)
                if whole is not None and old is not None:
                    successions[old.code] = Succession(old, False, (whole,))
    for province_key, divided in converter["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, shares in divided.items():
            old = old_unit(old_key)
            parts = [part(province_key, s["newWardKey"], bool(s["isDefaultNewWard"])) for s in shares]
            if old is None or any(p is None for p in parts):
                continue
            if old.code in successions:
                notes.append(f"old unit {old.code} is both merged wholly and divided; the division is kept")
            found = sorted((p for p in parts if p is not None), key=lambda p: p.code)
            successions[old.code] = Succession(old, len(found) > 1, tuple(found))

    return OfficialData(
        source=_source(provinces_package, units_package),
        provinces=provinces,
        wards=wards,
        legacy=legacy,
        successions=successions,
        notes=tuple(notes),
    )
