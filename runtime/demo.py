"""`keng demo`: the sample district and one broadcast taken through its lifecycle, printed as a timeline.

Runs on embedded defaults in a fresh temporary data directory unless `--data`/`--store` name one.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from adapters.store.app import Keng
from domain.errors import DomainError
from runtime.bootstrap import open_app
from runtime.cli_admin import print_timeline
from runtime.config import Settings
from runtime.inventory import install_sample
from runtime.views import event_view

TEXT = (
    "Theo Trung tâm Dự báo khí tượng thủy văn quốc gia, bão số 3 đang tiến gần Hà Nội. "
    "Ủy ban nhân dân quận Bắc Từ Liêm đề nghị bà con chằng chống nhà cửa, không ra ngoài khi mưa to gió lớn, "
    "theo dõi thông tin trên hệ thống loa truyền thanh và bảng tin điện tử."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keng demo`."""
    p = sub.add_parser("demo", help="sample district + one broadcast through its lifecycle (embedded defaults)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.data or args.store:
        return run_demo(open_app(settings, create=True), settings)
    with tempfile.TemporaryDirectory(prefix="keng-demo-") as tmp:
        return run_demo(open_app(replace(settings, data_dir=Path(tmp)), create=True), settings)


def _step(text: str) -> None:
    print(f"\n▶ {text}")


def run_demo(app: Keng, settings: Settings) -> int:
    """Drive the lifecycle through the application, as operators would, then print the broadcast's timeline."""
    _step("Nạp địa bàn mẫu (loading the sample district: Bắc Từ Liêm, 13 wards, generated groups and endpoints)")
    counts = install_sample(app)
    print("   " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    start = app.max_position()
    _step("minh.pham soạn bản tin khẩn cấp (drafts an emergency broadcast to the whole district)")
    bid = app.draft_broadcast(
        by="minh.pham", title="Cảnh báo bão số 3", text=TEXT, priority="emergency", target_areas=["021"]
    )
    print(f"   id {bid}")
    _step("minh.pham trình duyệt (submits it for approval)")
    app.submit_broadcast(bid, by="minh.pham")
    _step("minh.pham (soạn tin và duyệt tin) thử tự duyệt (drafter and approver, tries to approve his own broadcast)")
    try:
        app.approve_broadcast(bid, by="minh.pham")
    except DomainError as refused:
        print(f"   bị từ chối (refused): {refused}")
    _step("hung.tran duyệt (another approver approves it)")
    app.approve_broadcast(bid, by="hung.tran")
    item = app.broadcast(bid)
    expires = item.expires_at.astimezone(settings.display_tz)
    print(f"   trạng thái (state): {item.state}; phát {item.repeats} lần; hết hạn (expires) {expires:%H:%M %d/%m}")
    _step("Dòng thời gian bản tin (the broadcast's timeline, from the append-only log)")
    print_timeline([event_view(pos, ev, settings.display_tz) for pos, ev in app.read_events(start)])
    return 0
