"""CAP as real senders write it (issue 15): an empty `<value>` is valid, `expires` equal to `sent` is a warning, a
resource whose content does not match its digest is refused on its own, and an Update or Cancel with an empty
`<references>` is an error. `keng cap validate` prints warnings apart from errors; warnings alone exit 0."""

from __future__ import annotations

import argparse
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from keng.adapters.cap.errors import CapInvalid
from keng.adapters.cap.parse import check_cap, parse_cap
from keng.runtime.cli import cap as cli_cap
from keng.runtime.config import load_settings
from keng.runtime.logs import configure_logging
from tests.unit.cap_builders import alert, info

SENT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
EMPTY_VALUES = (
    "<eventCode><valueName>SAME</valueName><value></value></eventCode>"
    "<parameter><valueName>layer:Google:Region:0.1</valueName><value/></parameter>"
    "<parameter><valueName>mucDo</valueName><value>   </value></parameter>"
)
BAD_DIGEST = (
    "<resource><resourceDesc>Bản tin âm thanh</resourceDesc><mimeType>audio/mpeg</mimeType>"
    f"<derefUri>{base64.b64encode(b'not the audio').decode()}</derefUri><digest>{'ab' * 20}</digest></resource>"
)


def test_an_empty_value_is_valid_and_read_as_empty() -> None:
    a = parse_cap(alert(infos=(info(extra=EMPTY_VALUES),)))
    assert [(v.name, v.value) for v in a.infos[0].event_codes] == [("SAME", "")]
    assert [(v.name, v.value) for v in a.infos[0].parameters] == [("layer:Google:Region:0.1", ""), ("mucDo", "")]
    assert a.warnings == ()


def test_an_empty_value_name_is_still_an_error() -> None:
    with pytest.raises(CapInvalid) as caught:
        parse_cap(alert(infos=(info(extra="<parameter><valueName></valueName><value>x</value></parameter>"),)))
    assert [v.path for v in caught.value.violations] == ["alert/info[1]/parameter[1]/valueName"]


def test_expires_equal_to_sent_is_a_warning_and_taken_as_no_expiry() -> None:
    verdict = check_cap(alert(sent=SENT, infos=(info(expires=SENT),)))
    assert verdict.valid and verdict.violations == ()
    assert [(w.path, "taken as no expiry" in w.message) for w in verdict.warnings] == [("alert/info[1]/expires", True)]
    assert verdict.alert is not None and verdict.alert.infos[0].expires is None


def test_expires_before_sent_is_still_an_error() -> None:
    verdict = check_cap(alert(sent=SENT, infos=(info(expires=SENT - timedelta(seconds=1)),)))
    assert not verdict.valid and [v.path for v in verdict.violations] == ["alert/info[1]/expires"]


def test_a_resource_whose_digest_does_not_match_is_refused_on_its_own() -> None:
    verdict = check_cap(alert(infos=(info(extra=BAD_DIGEST),)))
    assert verdict.valid and verdict.alert is not None
    assert verdict.alert.infos[0].resources == ()
    [warning] = verdict.warnings
    assert warning.path == "alert/info[1]/resource[1]/derefUri"
    assert "does not match digest" in warning.message and "refused" in warning.message


def test_a_resource_that_is_not_base64_is_still_an_error() -> None:
    bad = BAD_DIGEST.replace(base64.b64encode(b"not the audio").decode(), "!!!")
    verdict = check_cap(alert(infos=(info(extra=bad),)))
    assert not verdict.valid and [v.path for v in verdict.violations] == ["alert/info[1]/resource[1]/derefUri"]


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
@pytest.mark.parametrize("references", [" ", "\n\t"])
def test_an_update_or_cancel_with_empty_references_is_an_error(msg_type: str, references: str) -> None:
    verdict = check_cap(alert(msg_type=msg_type, references=references))
    assert not verdict.valid
    assert [(v.path, "at least one earlier alert" in v.message) for v in verdict.violations] == [
        ("alert/references", True)
    ]


def test_an_alert_with_empty_references_is_valid() -> None:
    assert check_cap(alert(references=" ")).valid


def test_warnings_travel_with_the_errors_of_an_invalid_document() -> None:
    verdict = check_cap(alert(sent=SENT, status="Real", infos=(info(expires=SENT, extra=BAD_DIGEST),)))
    assert [v.path for v in verdict.violations] == ["alert/status"]
    assert [w.path for w in verdict.warnings] == ["alert/info[1]/expires", "alert/info[1]/resource[1]/derefUri"]


def run(argv: list[str], tmp_path: Path) -> int:
    configure_logging("json", "warning")
    parser = argparse.ArgumentParser(prog="keng")
    cli_cap.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args, load_settings(data_dir=str(tmp_path), store_url=None))
    return code


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    docs = {
        "clean": alert(infos=(info(extra=EMPTY_VALUES),)),
        "warned": alert(sent=SENT, infos=(info(expires=SENT, extra=BAD_DIGEST),)),
        "broken": alert(msg_type="Cancel", references=" ", sent=SENT, infos=(info(expires=SENT),)),
    }
    for name, doc in docs.items():
        (tmp_path / f"{name}.xml").write_bytes(doc)
    return {name: tmp_path / f"{name}.xml" for name in docs}


def test_validate_prints_warnings_apart_and_warnings_alone_exit_0(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["cap", "validate", str(files["clean"]), str(files["warned"])], tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    assert "hợp lệ (valid CAP 1.2)" in out[0] and "cảnh báo" not in out[0]
    warned = out[out.index(next(line for line in out if line.startswith(str(files["warned"])))) :]
    assert "hợp lệ (valid CAP 1.2)" in warned[0] and "2 cảnh báo (warnings)" in warned[0]
    assert [line.split()[0:3] for line in warned[1:]] == [
        ["cảnh", "báo", "(warning)"],
        ["cảnh", "báo", "(warning)"],
    ]
    assert not any("lỗi (error)" in line for line in out)


def test_validate_lists_errors_and_warnings_separately_and_an_error_exits_1(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["cap", "validate", str(files["broken"])], tmp_path) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "không hợp lệ (invalid) — 1 lỗi (error), 1 cảnh báo (warning)" in lines[0]
    assert lines[1].strip().startswith("lỗi (error) alert/references:")
    assert lines[2].strip().startswith("cảnh báo (warning) alert/info[1]/expires:")


def test_validate_json_keeps_warnings_apart(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(files[n]) for n in ("clean", "warned", "broken")]
    assert run(["cap", "validate", *paths, "--json"], tmp_path) == 1
    views = orjson.loads(capsys.readouterr().out)
    assert [(v["valid"], len(v["violations"]), len(v["warnings"])) for v in views] == [
        (True, 0, 0),
        (True, 0, 2),
        (False, 1, 1),
    ]
