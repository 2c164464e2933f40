"""The official 2025 units and the old -> new conversion, read from the real vietnam-provinces and vietnamadminunits."""

from __future__ import annotations

import importlib.util
import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keng.adapters.official_units import (
    _ADMIN_UNITS,
    _PROVINCES,
    EFFECTIVE,
    SOURCE,
    OfficialData,
    OfficialDataMissing,
    _load,
    _Package,
    _parse_bounds,
    load_official,
)


@pytest.fixture(scope="module")
def data() -> OfficialData:
    return load_official()


def _names(data: OfficialData, old: str) -> dict[str, str]:
    succession = data.succession(old)
    assert succession is not None
    return {p.code: p.name for p in succession.successors}


def test_the_source_names_both_packages_and_their_versions(data: OfficialData) -> None:
    assert SOURCE == "vietnam-provinces 2025.10.1 + vietnamadminunits 1.0.4"
    assert data.source == SOURCE
    assert data.effective == date(2025, 7, 1) == EFFECTIVE
    assert load_official() is data


def test_ha_noi_and_the_country_count_as_the_reform_says(data: OfficialData) -> None:
    ha_noi = data.province("01")
    assert ha_noi is not None
    assert (ha_noi.name, ha_noi.level, ha_noi.kind, ha_noi.parent) == (
        "Thành phố Hà Nội",
        "city",
        "thành phố trung ương",
        None,
    )
    wards = data.units("01")
    assert len(wards) == 126
    assert [w.code for w in wards] == sorted(w.code for w in wards)
    assert {w.parent for w in wards} == {"01"} and {w.level for w in wards} == {"ward"}
    assert {w.kind for w in wards} == {"phường", "xã"}
    cao_bang = data.province("04")
    assert cao_bang is not None and (cao_bang.name, cao_bang.kind) == ("Tỉnh Cao Bằng", "tỉnh")
    provinces = [data.province(f"{n:02d}") for n in range(100)]
    assert sum(p is not None for p in provinces) == 34
    assert sum(len(data.units(p.code)) for p in provinces if p is not None) == 3321
    assert data.province("00613") is None and data.unit("99999") is None and data.units("99") == []


def test_every_old_ward_of_bac_tu_liem_has_a_succession(data: OfficialData) -> None:
    district = data.legacy("021")
    assert district is not None
    assert (district.name, district.level, district.parent, district.province) == (
        "Quận Bắc Từ Liêm",
        "district",
        "01",
        "01",
    )
    old = data.legacy_wards("021")
    assert [w.code for w in old] == [
        "00595", "00598", "00601", "00602", "00604", "00607", "00610",
        "00611", "00613", "00616", "00617", "00619", "00620",
    ]  # fmt: skip
    for ward in old:
        assert (ward.level, ward.parent, ward.province) == ("ward", "021", "01")
        succession = data.succession(ward.code)
        assert succession is not None and succession.old == ward


def test_minh_khai_was_divided_among_four_with_tay_tuu_taking_its_seat(data: OfficialData) -> None:
    succession = data.succession("00613")
    assert succession is not None
    assert succession.old.name == "Phường Minh Khai" and succession.divided
    assert [(p.code, p.name, p.default) for p in succession.successors] == [
        ("00598", "Phường Thượng Cát", False),
        ("00602", "Phường Đông Ngạc", False),
        ("00613", "Phường Tây Tựu", True),
        ("00622", "Phường Xuân Phương", False),
    ]
    for part in succession.successors:
        unit = data.unit(part.code)
        assert unit is not None and (part.lat, part.lon) == (unit.lat, unit.lon) and part.lat is not None


def test_wholly_merged_wards_have_one_successor(data: OfficialData) -> None:
    for old, new, name in (
        ("00595", "00598", "Phường Thượng Cát"),
        ("00598", "00598", "Phường Thượng Cát"),
        ("00602", "00602", "Phường Đông Ngạc"),
    ):
        succession = data.succession(old)
        assert succession is not None and not succession.divided
        assert [(p.code, p.name, p.default) for p in succession.successors] == [(new, name, True)]


def test_tay_tuu_was_divided_among_wards_and_communes(data: OfficialData) -> None:
    names = _names(data, "00607")
    assert sorted(names.values()) == ["Phường Thượng Cát", "Phường Tây Tựu", "Xã Hoài Đức", "Xã Ô Diên"]
    assert names["00613"] == "Phường Tây Tựu" and names["00598"] == "Phường Thượng Cát"
    succession = data.succession("00607")
    assert succession is not None
    assert [p.code for p in succession.successors if p.default] == ["00613"]


def test_reused_codes_mean_different_units_in_the_two_namespaces(data: OfficialData) -> None:
    for code, old_name, new_name in (
        ("00613", "Phường Minh Khai", "Phường Tây Tựu"),
        ("00598", "Phường Liên Mạc", "Phường Thượng Cát"),
        ("00602", "Phường Đức Thắng", "Phường Đông Ngạc"),
        ("00611", "Phường Xuân Tảo", "Phường Xuân Đỉnh"),
    ):
        old, new = data.legacy(code), data.unit(code)
        assert old is not None and new is not None
        assert (old.name, new.name) == (old_name, new_name)
    minh_khai = data.legacy("00613")
    assert minh_khai is not None and minh_khai.bounds == (21.043434, 105.732658, 21.076812, 105.761497)


def test_every_ha_noi_successor_is_a_current_unit_of_ha_noi(data: OfficialData) -> None:
    districts = {w.parent for code in _legacy_codes() if (w := data.legacy(code)) is not None and w.province == "01"}
    assert len(districts) == 30
    old_wards = parts = 0
    for district in districts:
        assert district is not None
        for ward in data.legacy_wards(district):
            old_wards += 1
            succession = data.succession(ward.code)
            assert succession is not None
            for part in succession.successors:
                unit = data.unit(part.code)
                assert unit is not None and unit.parent == "01" and unit.name == part.name
                parts += 1
    assert old_wards == 526 and parts > old_wards  # some were divided


def test_every_old_ward_in_the_country_has_a_well_formed_succession(data: OfficialData) -> None:
    codes = _legacy_codes()
    assert len(codes) == 10035
    for code in codes:
        succession = data.succession(code)
        assert succession is not None, code
        parts = succession.successors
        assert len(parts) >= 1 and (len(parts) > 1) == succession.divided
        assert [p.code for p in parts] == sorted({p.code for p in parts})
        assert sum(p.default for p in parts) == 1
        for part in parts:
            unit = data.unit(part.code)
            assert unit is not None and unit.level == "ward"


def test_wardless_island_districts_became_special_zones(data: OfficialData) -> None:
    succession = data.succession("318")
    assert succession is not None
    assert (succession.old.name, succession.old.level) == ("Huyện Bạch Long Vĩ", "district")
    assert [(p.name, p.default) for p in succession.successors] == [("Đặc khu Bạch Long Vĩ", True)]
    unit = data.unit(succession.successors[0].code)
    assert unit is not None and (unit.kind, unit.parent) == ("đặc khu", "31")


def test_centres_follow_the_name_where_vietnamadminunits_numbers_a_unit_differently(data: OfficialData) -> None:
    """vietnamadminunits' 00226 is Văn Miếu - Quốc Tử Giám; the official 00226 is Kim Liên, with Kim Liên's centre."""
    with closing(_dataset()) as db:
        rows = {
            name: (code, lat, lon, area)
            for code, name, lat, lon, area in db.execute(
                "SELECT wardCode, ward, wardLat, wardLon, wardAreaKm2 FROM admin_units WHERE provinceCode = '01'"
            )
        }
    kim_lien, van_mieu = data.unit("00226"), data.unit("00196")
    assert kim_lien is not None and van_mieu is not None
    assert kim_lien.name == "Phường Kim Liên" and van_mieu.name == "Phường Văn Miếu - Quốc Tử Giám"
    assert rows["Phường Kim Liên"][0] != "00226" and rows["Phường Văn Miếu - Quốc Tử Giám"][0] == "00226"
    assert (kim_lien.lat, kim_lien.lon, kim_lien.area_km2) == rows["Phường Kim Liên"][1:]
    assert (van_mieu.lat, van_mieu.lon, van_mieu.area_km2) == rows["Phường Văn Miếu - Quốc Tử Giám"][1:]
    assert any("00226" in note and "00196" in note for note in data.notes)
    assert all(u.lat is not None and u.lon is not None for p in range(100) for u in data.units(f"{p:02d}"))


def test_a_missing_package_is_named_with_the_command_that_installs_it() -> None:
    absent = _Package("keng_no_such_module", "keng-no-such-dist", "9.9")
    with pytest.raises(OfficialDataMissing) as raised:
        _load(absent, _ADMIN_UNITS)
    assert "'keng-no-such-dist'" in str(raised.value)
    assert "pip install 'keng-no-such-dist==9.9'" in str(raised.value)
    with pytest.raises(OfficialDataMissing, match=r"pip install 'keng-no-such-dist==9\.9'"):
        _load(_PROVINCES, absent)
    no_data = _Package("json", "keng-json-without-data", "1.0")  # a real package with no data/ folder
    with pytest.raises(OfficialDataMissing, match=r"no data/converter_2025\.json.*pip install"):
        _load(_PROVINCES, no_data)


def test_loading_never_imports_the_heavy_converter() -> None:
    import sys

    load_official()
    assert not any(name.startswith("vietnamadminunits") for name in sys.modules)


coordinate = st.floats(min_value=-90, max_value=180, allow_nan=False, allow_infinity=False)


@given(coordinate, coordinate, coordinate, coordinate)
def test_bounds_are_read_as_min_and_max_corners(a: float, b: float, c: float, d: float) -> None:
    assert _parse_bounds(f"{a},{b} – {c},{d}") == (min(a, c), min(b, d), max(a, c), max(b, d))


@pytest.mark.parametrize("text", [None, "", "21.0,105.0", "21.0,105.0 – x,105.1", "1,2,3 – 4,5"])
def test_unreadable_bounds_are_none(text: str | None) -> None:
    assert _parse_bounds(text) is None


def _dataset() -> sqlite3.Connection:
    spec = importlib.util.find_spec("vietnamadminunits")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "dataset.db"
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def _legacy_codes() -> list[str]:
    with closing(_dataset()) as db:
        return [code for (code,) in db.execute("SELECT wardCode FROM admin_units_legacy WHERE wardCode IS NOT NULL")]
