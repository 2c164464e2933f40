"""`keng tts say` argument errors, refused before any synthesis."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from keng.runtime.cli import tts as cli_tts


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(cli_tts, "_say", lambda *a: pytest.fail("synthesis must not start"))
    parser = argparse.ArgumentParser(prog="keng")
    cli_tts.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tts", "say", "  ", "-o", "x.mp3"], "the text is empty"),
        (["tts", "say", "a" * 5001, "-o", "x.mp3"], "5001 characters; the limit is 5000"),
        (["tts", "say", "xin chào", "-o", "x.mp3", "--engine", "piper"], "unknown engine 'piper'"),
        (["tts", "say", "xin chào", "-o", "x.ogg"], "must end in .mp3 or .wav"),
        (["tts", "say", "xin chào", "-o", "x.mp3", "--speed", "3"], "--speed must be between"),
    ],
)
def test_bad_requests_exit_2_with_a_clear_message(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(argv, monkeypatch) == 2
    assert message in capsys.readouterr().err


def test_coqui_without_a_model_says_how_to_configure_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KENG_TTS_MODEL", raising=False)
    monkeypatch.setattr("keng.adapters.tts.coqui.coqui_installed", lambda: True)
    assert _run(["tts", "say", "xin chào", "-o", "x.mp3", "--engine", "coqui"], monkeypatch) == 2
    assert "no coqui model configured: pass --model or set KENG_TTS_MODEL" in capsys.readouterr().err


def test_coqui_not_installed_says_which_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr("keng.adapters.tts.coqui.coqui_installed", lambda: False)
    argv = ["tts", "say", "xin chào", "-o", "x.mp3", "--engine", "coqui", "--model", str(tmp_path / "m.pth")]
    assert _run(argv, monkeypatch) == 2
    assert "pip install 'keng[coqui]'" in capsys.readouterr().err


def test_prepare_prints_the_spoken_form(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["tts", "prepare", "CA phường: nhiệt độ -2°C, QL32 ngập từ 7h-9h ngày 5/12"], monkeypatch) == 0
    assert capsys.readouterr().out == (
        "công an phường: nhiệt độ âm hai độ xê, quốc lộ ba mươi hai ngập từ bảy giờ đến chín giờ "
        "ngày năm tháng mười hai\n"
    )


def test_prepare_reads_standard_input_and_prints_chunks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Họp lúc 19h30. Liên hệ 0912 345 678 🌊"))
    assert _run(["tts", "prepare", "-", "--chunks"], monkeypatch) == 0
    captured = capsys.readouterr()
    assert captured.out == "Họp lúc mười chín giờ ba mươi phút. Liên hệ không chín một hai, ba bốn năm, sáu bảy tám\n"
    assert "🌊" in captured.err


@pytest.mark.parametrize(
    ("text", "message"), [("  ", "empty text"), ("🌊", "nothing speakable"), ("a" * 5001, "limit")]
)
def test_prepare_refuses_what_cannot_be_spoken(
    text: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["tts", "prepare", text], monkeypatch) == 2
    assert message in capsys.readouterr().err
