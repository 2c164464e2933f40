"""`keng tts say "TEXT" -o out.mp3 [--engine espeak|coqui] [--voice ...]`: speak text to a file.
`keng tts prepare "TEXT" [--chunks]`: print the spoken form (numbers, dates, units, abbreviations in words).

`register(subparsers)` adds the `tts` command group to the main argparse CLI; the handler returns an exit code
and prints one clear line on failure. The coqui model comes from --model/--config or the settings (KENG_TTS_MODEL /
KENG_TTS_CONFIG, read by runtime/config.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keng.adapters.tts.base import ENGINES, MAX_TEXT_CHARS, SynthesisFailed, TTSConfig
from keng.runtime.config import Settings, load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tts say` and `tts prepare` to the CLI's subparsers."""
    tts = subparsers.add_parser("tts", help="text-to-speech tools")
    tts_sub = tts.add_subparsers(dest="tts_command", required=True)
    say = tts_sub.add_parser("say", help="synthesise Vietnamese text to an MP3 or WAV file")
    say.add_argument("text", help="the text to speak (use - to read standard input)")
    say.add_argument("-o", "--output", required=True, type=Path, help="output file (.mp3 or .wav)")
    say.add_argument("--engine", default="espeak", help="espeak (default) or coqui")
    say.add_argument("--voice", default=None, help="espeak: vi, vi-vn-x-central, vi-vn-x-south")
    say.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.5..2.0 (default 1.0)")
    say.add_argument("--lufs", type=float, default=-16.0, help="loudness target in LUFS (default -16)")
    say.add_argument("--model", type=Path, default=None, help="coqui checkpoint (.pth); or KENG_TTS_MODEL")
    say.add_argument("--config", type=Path, default=None, help="coqui config.json; or KENG_TTS_CONFIG")
    say.add_argument("--timeout", type=float, default=60.0, help="seconds before the engine is given up")
    say.set_defaults(handler=cmd_say)
    prep = tts_sub.add_parser("prepare", help="print the spoken form of Vietnamese text (what a voice will read)")
    prep.add_argument("text", help="the text (use - to read standard input)")
    prep.add_argument("--chunks", action="store_true", help="one synthesis chunk a line instead of the whole text")
    prep.set_defaults(handler=cmd_prepare)


def cmd_prepare(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Handle `keng tts prepare`: print the prepared text; exit 2 when nothing in it can be spoken."""
    from keng.domain.vitext import TextRefused, prepare

    text = sys.stdin.read() if args.text == "-" else args.text
    if len(text) > MAX_TEXT_CHARS:
        return _fail(f"the text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}", "prepare")
    try:
        prepared = prepare(text)
    except TextRefused as exc:
        return _fail(str(exc), "prepare")
    print("\n".join(prepared.chunks) if args.chunks else prepared.text)
    if prepared.unspeakable:
        print(f"warning: removed characters no voice can speak: {' '.join(prepared.unspeakable)}", file=sys.stderr)
    return 0


def _fail(message: str, command: str = "say") -> int:
    print(f"keng tts {command}: error: {message}", file=sys.stderr)
    return 2


def cmd_say(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Handle `keng tts say`; return the process exit code (settings: the environment's when not given)."""
    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        return _fail("the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        return _fail(f"the text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    if args.engine not in ENGINES:
        return _fail(f"unknown engine {args.engine!r}; choose one of: {', '.join(ENGINES)}")
    suffix = args.output.suffix.lower()
    if suffix not in (".mp3", ".wav"):
        return _fail(f"the output must end in .mp3 or .wav, not {suffix or 'nothing'!r}")
    if not (0.5 <= args.speed <= 2.0):
        return _fail("--speed must be between 0.5 and 2.0")
    settings = settings or load_settings()
    model = args.model or settings.tts_model
    config_path = args.config or settings.tts_config
    if args.engine == "coqui":
        from keng.adapters.tts.coqui import coqui_installed

        if not coqui_installed():
            return _fail("the coqui engine is not installed: pip install 'keng[coqui]'")
        if model is None:
            return _fail("no coqui model configured: pass --model or set KENG_TTS_MODEL")
    config = TTSConfig(
        engine=args.engine,
        voice=args.voice or ("vi" if args.engine == "espeak" else ""),
        speed=args.speed,
        loudness_lufs=args.lufs,
        timeout_s=args.timeout,
        coqui_model=model,
        coqui_config=config_path,
    )
    return _say(text, args.output, config)


def _say(text: str, output: Path, config: TTSConfig) -> int:
    from keng.adapters.audio_store import encode_mp3, encode_wav
    from keng.adapters.tts.render import TextTooLong
    from keng.domain.vitext import TextRefused
    from keng.runtime.bootstrap import build_renderer

    renderer = build_renderer()
    try:
        prepared = renderer.check_text(text, config)
        audio = renderer.synthesize(prepared, config)
    except (TextRefused, TextTooLong) as exc:
        return _fail(str(exc))
    except SynthesisFailed as exc:
        return _fail(f"the {exc.engine} engine failed: {exc.reason}")
    finally:
        renderer.close()
    wav = output.suffix.lower() == ".wav"
    data = encode_wav(audio) if wav else encode_mp3(audio, config.mp3_bitrate_kbps)
    try:
        output.write_bytes(data)
    except OSError as exc:
        return _fail(f"cannot write {output}: {exc.strerror}")
    if prepared.unspeakable:
        print(f"warning: removed characters no voice can speak: {' '.join(prepared.unspeakable)}", file=sys.stderr)
    print(f"{output}: {audio.duration_s:.2f} s, {audio.sample_rate} Hz, {len(data)} bytes, {config.engine}")
    return 0
