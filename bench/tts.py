"""TTS benchmark: real-time factor, cache-hit latency and single-flight under concurrency.

    python -m bench.tts [--json]                            # espeak, 20 bulletins of 100-1,500 chars
    python -m bench.tts --engine coqui --standard [--json]  # standard-size random VITS (coqui extra)

RTF here is audio seconds per wall second (higher is faster; 20 means 20x real time), measured for the full
render path: text preparation, synthesis, loudness normalisation. The baseline printed beside it is the same
bulletins' preparation alone. Uses cuda for coqui when available. With --json the last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from keng.adapters.audio_store import AssetInfo, AudioStore, content_key, lookup
from keng.adapters.tts.base import Audio, TTSConfig
from keng.adapters.tts.render import Renderer
from keng.domain.vitext import prepare

SENTENCES = [
    "UBND phường Hòa Bình thông báo: do ảnh hưởng của bão số 3, từ 14h ngày 12/9/2024 sẽ cắt điện TDP 5.",
    "Đề nghị bà con chủ động chằng chống nhà cửa, di dời người và tài sản đến nơi an toàn.",
    "Lượng mưa phổ biến 100-200mm, gió giật cấp 13-14, sóng biển cao 3-5m.",
    "Mọi thông tin xin liên hệ đường dây nóng 0912.345.678 hoặc gọi 114 khi có cháy.",
    "Hỗ trợ 1.500.000 đồng/hộ cho các hộ bị thiệt hại theo Quyết định số 123/QĐ-UBND.",
    "Tỷ lệ tiêm chủng tại phường đã đạt 95%, tăng 2,5% so với cùng kỳ năm trước.",
    "Ban chỉ huy PCTT&TKCN quận yêu cầu các lực lượng trực 24/24 giờ.",
]


def bulletins(count: int = 20, low: int = 100, high: int = 1500) -> list[str]:
    """count bulletins whose lengths spread evenly from low to high characters."""
    out = []
    for i in range(count):
        target = low + (high - low) * i // max(1, count - 1)
        text = ""
        j = i
        while len(text) < target:
            text += SENTENCES[j % len(SENTENCES)] + " "
            j += 1
        out.append(text[:target].rsplit(" ", 1)[0] + ".")
    return out


def measure_rtf(
    renderer: Renderer, texts: list[str], config: TTSConfig, store: AudioStore
) -> tuple[list[float], float]:
    """RTF per bulletin through the serving path (prepare, synthesise, normalise, encode, store); total
    audio s."""
    rtfs, total = [], 0.0
    renderer.synthesize(prepare("Khởi động."), config)  # load the engine outside the timing
    for text in texts:
        started = time.perf_counter()
        info = _fetch(renderer, store, text, config)
        wall = time.perf_counter() - started
        rtfs.append(info.duration_s / wall)
        total += info.duration_s
    return rtfs, total


def _fetch(renderer: Renderer, store: AudioStore, text: str, config: TTSConfig) -> AssetInfo:
    """The serving path of render_bulletin: check and prepare (memoised), hash, get the stored asset."""
    prepared = renderer.check_text(text, config)
    key = content_key(prepared.text, config.engine, config.voice, config.settings_fingerprint())
    return store.get_or_create(key, config.engine, config.voice, partial(renderer.synthesize, prepared, config))


def cache_hit_latency(
    renderer: Renderer, texts: list[str], config: TTSConfig, store: AudioStore, rounds: int = 200
) -> list[float]:
    """Milliseconds for prepare + key + lookup of already stored bulletins (the cache-hit path)."""
    renders = store.renders
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        info = _fetch(renderer, store, texts[i % len(texts)], config)
        times.append((time.perf_counter() - started) * 1000)
        assert info.size > 0
    if store.renders != renders:
        raise RuntimeError(f"cache misses during the cache-hit measurement: {store.renders - renders}")
    return times


def lookup_latency(store: AudioStore, rounds: int = 2000) -> list[float]:
    """Milliseconds for hash -> path, size, mime, duration (what the audio service does per device
    request)."""
    keys = [p.stem for p in store.root.glob("*.mp3")]
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        info = lookup(store.root, keys[i % len(keys)])
        times.append((time.perf_counter() - started) * 1000)
        assert info is not None
    return times


def single_flight(renderer: Renderer, text: str, config: TTSConfig, root: Path, requests: int = 32) -> int:
    """Send `requests` concurrent requests for one new text; return how many syntheses ran."""
    store = AudioStore(root)
    prepared = prepare(text)
    key = content_key(prepared.text, config.engine, config.voice, config.settings_fingerprint())
    count = 0
    lock = threading.Lock()

    def render() -> Audio:
        nonlocal count
        with lock:
            count += 1
        return renderer.synthesize(prepared, config)

    with ThreadPoolExecutor(max_workers=requests) as pool:
        list(pool.map(lambda _: store.get_or_create(key, config.engine, config.voice, render), range(requests)))
    return count


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["espeak", "coqui"], default="espeak")
    parser.add_argument("--standard", action="store_true", help="coqui: standard-size VITS (default VitsArgs)")
    parser.add_argument("--count", type=int, default=20, help="bulletins (default 20)")
    parser.add_argument("--max-chars", type=int, default=1500, help="longest bulletin (default 1,500)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="keng-bench-"))
    config = TTSConfig()
    device = "cpu"
    if args.engine == "coqui":
        import torch

        from keng.adapters.tts.random_vits import build_random_vits

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model, cfg = build_random_vits(work / "model", tiny=not args.standard)
        config = TTSConfig(
            engine="coqui", voice="", coqui_model=model, coqui_config=cfg, coqui_device=device, timeout_s=600
        )
    texts = bulletins(args.count, high=args.max_chars)
    started = time.perf_counter()
    for text in texts:
        prepare(text)
    prep_ms = (time.perf_counter() - started) * 1000 / len(texts)
    store = AudioStore(work / "store")
    renderer = Renderer()
    rtfs, audio_s = measure_rtf(renderer, texts, config, store)
    hits = cache_hit_latency(renderer, texts, config, store)
    lookups = lookup_latency(store)
    flights = single_flight(renderer, texts[0] + " Bản tin thử.", config, work / "flight")
    renderer.close()
    result = {
        "engine": args.engine,
        "device": device,
        "standard": args.standard,
        "bulletins": len(texts),
        "chars_min": min(map(len, texts)),
        "chars_max": max(map(len, texts)),
        "audio_s_total": round(audio_s, 1),
        "rtf_median": round(statistics.median(rtfs), 2),
        "rtf_worst": round(min(rtfs), 2),
        "prepare_ms_mean": round(prep_ms, 3),
        "cache_hit_p50_ms": round(statistics.median(hits), 3),
        "cache_hit_p99_ms": round(p99(hits), 3),
        "lookup_p99_ms": round(p99(lookups), 3),
        "concurrent_requests": 32,
        "syntheses_for_concurrent_requests": flights,
    }
    print(
        f"engine={args.engine} device={device} bulletins={len(texts)} "
        f"({result['chars_min']}-{result['chars_max']} chars, {audio_s:.0f} s of audio)"
    )
    print(f"  RTF (audio s / wall s): median {result['rtf_median']}x, worst {result['rtf_worst']}x")
    print(f"  baseline: text preparation alone (not memoised) {prep_ms:.2f} ms per bulletin")
    print(
        f"  cache hit (text -> stored asset): p50 {result['cache_hit_p50_ms']} ms, "
        f"p99 {result['cache_hit_p99_ms']} ms; hash lookup p99 {result['lookup_p99_ms']} ms"
    )
    print(f"  32 concurrent requests for one new text -> {flights} synthesis")
    if args.json:
        print(json.dumps(result))
    return 0 if flights == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
