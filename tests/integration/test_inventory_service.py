"""services/inventory.py on a real SQLite store: district files load whole or not at all, at an admin's command, and
a reader lists only the endpoints in wards their scope reaches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keng.adapters.district_file import DistrictFileError
from keng.adapters.store.app import Keng
from keng.domain.authority import EVERYTHING
from keng.domain.errors import NotAuthorised
from keng.projections.catalog import Catalog
from keng.services.access import SYSTEM
from keng.services.inventory import bootstrap_admin, load_district_file, readable_endpoints
from tests.integration.small_district import WARD_A, WARD_B, Clock, open_district

ROWS = f"""record,code,name,parent,kind
group,{WARD_B}-T01,Tổ dân phố số 1,{WARD_B},
endpoint,{WARD_B}-T01-IP1,,{WARD_B}-T01,ip-speaker
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Keng]:
    app = open_district(tmp_path, Clock())
    yield app
    app.close()


def test_a_district_file_loads_as_an_admin_after_a_dry_run_that_stores_nothing(app: Keng, tmp_path: Path) -> None:
    path = tmp_path / "more.csv"
    path.write_text(ROWS, encoding="utf-8")
    before = app.max_position()
    assert load_district_file(app, path, by="admin", dry_run=True) == {"group": 1, "endpoint": 1}
    assert app.max_position() == before
    with pytest.raises(NotAuthorised):
        load_district_file(app, path, by="hung")
    assert load_district_file(app, path, by="admin") == {"group": 1, "endpoint": 1}
    with pytest.raises(DistrictFileError, match="nothing was loaded"):
        load_district_file(app, path, by=SYSTEM)  # every row is there already
    assert app.max_position() == before + 2


def test_a_ward_reader_lists_the_endpoints_of_their_ward_only(app: Keng, tmp_path: Path) -> None:
    path = tmp_path / "more.csv"
    path.write_text(ROWS, encoding="utf-8")
    load_district_file(app, path, by="admin")
    catalog = Catalog().fold(app.read_events())
    ward_a = app.visibility_of(app.staff("tuan"))
    assert [e.code for e in readable_endpoints(catalog, ward_a)] == [f"{WARD_A}-T01-IP1"]
    assert len(readable_endpoints(catalog, EVERYTHING, kind="ip-speaker")) == 2
    assert [e.code for e in readable_endpoints(catalog, EVERYTHING, ward=WARD_B)] == [f"{WARD_B}-T01-IP1"]


def test_only_an_empty_store_gets_a_first_admin(app: Keng) -> None:
    before = app.max_position()
    bootstrap_admin(app)
    assert app.max_position() == before and app.staff("admin").enrolled_by == SYSTEM


def test_a_boards_resolution_is_registered_from_the_file_and_checked(app: Keng, tmp_path: Path) -> None:
    from keng.domain.display import board_resolution

    path = tmp_path / "boards.csv"
    path.write_text(
        "record,code,name,parent,kind,technology,capabilities\n"
        f"endpoint,{WARD_B}-LCD1,,{WARD_B},eboard,lcd-4g,display=1024x600\n"
        f"endpoint,{WARD_B}-TXT1,,{WARD_B},eboard,led-4g,text-only\n",
        encoding="utf-8",
    )
    assert load_district_file(app, path, by="admin") == {"endpoint": 2}
    boards = {e.code: e for e in Catalog().fold(app.read_events()).endpoints(kind="eboard")}
    lcd, text = boards[f"{WARD_B}-LCD1"], boards[f"{WARD_B}-TXT1"]
    assert lcd.capabilities == ["display=1024x600"]
    assert board_resolution(lcd.technology, lcd.capabilities) == (1024, 600)
    assert board_resolution(text.technology, text.capabilities) is None
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "record,code,name,parent,kind,technology,capabilities\n"
        f"endpoint,{WARD_B}-LCD2,,{WARD_B},eboard,lcd-4g,display=800by480\n"
        f"ward,{WARD_B}9,Phường X,{WARD_B},,,text-only\n",
        encoding="utf-8",
    )
    with pytest.raises(DistrictFileError) as refused:
        load_district_file(app, bad, by="admin")
    assert "line 2: display resolution '800by480' is not WIDTHxHEIGHT" in str(refused.value)
    assert "line 3" in str(refused.value) and "capabilities" in str(refused.value)


def test_a_file_of_todays_two_tier_structure_loads_wards_under_their_city(tmp_path: Path) -> None:
    app = Keng(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "k.db")})
    try:
        bootstrap_admin(app)
        path = tmp_path / "today.csv"
        path.write_text(
            "record,code,name,parent,lat,lon,kind\n"
            "city,01,Thành phố Hà Nội,,21.0285,105.8542,\n"
            "ward,00613,Phường Tây Tựu,01,21.0642,105.739,\n"
            "group,00613-T01,Tổ dân phố số 1,00613,21.0651,105.7402,\n"
            "endpoint,00613-T01-IP1,,00613-T01,21.0652,105.7403,ip-speaker\n"
            "endpoint,01-LED1,,01,21.0286,105.8543,eboard\n",
            encoding="utf-8",
        )
        assert load_district_file(app, path, by="admin") == {"city": 1, "ward": 1, "group": 1, "endpoint": 2}
        tree = app.area_registry().at(app.clock())
        assert tree.chain("00613-T01") == ["00613-T01", "00613", "01"]
        assert app.endpoint("01-LED1").ward == "01"
        bad = tmp_path / "bad.csv"
        bad.write_text("record,code,name,parent\ncity,02,Tỉnh Hà Giang,01\nward,00614,Phường X,00613\n", "utf-8")
        with pytest.raises(DistrictFileError) as refused:
            load_district_file(app, bad, by="admin")
        assert "a city has no parent area" in str(refused.value)
        assert "a ward belongs to a district or city, not to ward 00613" in str(refused.value)
    finally:
        app.close()
