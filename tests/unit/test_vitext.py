# ruff: noqa: E501  (a data table of real phrases: one phrase a line reads best)
"""Table-driven tests of Vietnamese text preparation: real bulletin phrases and what a voice should read."""

from __future__ import annotations

import unicodedata

import pytest

from keng.domain.vinumbers import read_integer
from keng.domain.vitext import PreparedText, TextRefused, prepare, split_sentences

BULLETIN_PHRASES: list[tuple[str, str]] = [
    ("UBND phường Hòa Bình thông báo", "ủy ban nhân dân phường Hòa Bình thông báo"),
    ("HĐND quận họp kỳ thứ 7", "hội đồng nhân dân quận họp kỳ thứ bảy"),
    (
        "Họp tổ dân phố (TDP) số 5 lúc 19h30",
        "Họp tổ dân phố (tổ dân phố) số năm lúc mười chín giờ ba mươi phút",
    ),
    ("Đội PCCC và CNCH có mặt kịp thời", "Đội phòng cháy chữa cháy và cứu nạn cứu hộ có mặt kịp thời"),
    ("Ban chỉ huy PCTT&TKCN quận", "Ban chỉ huy phòng chống thiên tai và tìm kiếm cứu nạn quận"),
    ("BCĐ phòng chống dịch phường", "ban chỉ đạo phòng chống dịch phường"),
    ("MTTQ Việt Nam phường vận động ủng hộ", "mặt trận tổ quốc Việt Nam phường vận động ủng hộ"),
    (
        "Liên hệ công an khu vực: 0912.345.678",
        "Liên hệ công an khu vực: không chín một hai, ba bốn năm, sáu bảy tám",
    ),
    ("Đường dây nóng 0243 826 1234", "Đường dây nóng không hai bốn ba, tám hai sáu, một hai ba bốn"),
    ("Khi có cháy gọi 114", "Khi có cháy gọi một một bốn"),
    ("Cấp cứu gọi 115", "Cấp cứu gọi một một năm"),
    ("Số điện thoại: 0987654321", "Số điện thoại: không chín tám bảy, sáu năm bốn, ba hai một"),
    (
        "Gọi +84 912 345 678 để được hỗ trợ",
        "Gọi cộng tám tư chín một hai, ba bốn năm, sáu bảy tám để được hỗ trợ",
    ),
    (
        "Ngày 12/9/2024 sẽ tiêm vắc xin",
        "Ngày mười hai tháng chín năm hai nghìn không trăm hai mươi tư sẽ tiêm vắc xin",
    ),
    (
        "Từ ngày 01/10/2024 đến ngày 15/10/2024",
        "Từ ngày một tháng mười năm hai nghìn không trăm hai mươi tư đến ngày mười lăm tháng mười năm hai nghìn không trăm hai mươi tư",
    ),
    ("Từ 15/10 đến 20/10", "Từ ngày mười lăm tháng mười đến ngày hai mươi tháng mười"),
    ("Tháng 4/2025 nộp hồ sơ", "tháng tư năm hai nghìn không trăm hai mươi lăm nộp hồ sơ"),
    ("Hạn chót ngày 30-6-2025", "Hạn chót ngày ba mươi tháng sáu năm hai nghìn không trăm hai mươi lăm"),
    ("Thứ 4 ngày 5/3", "Thứ tư ngày năm tháng ba"),
    ("Họp lúc 14:00 thứ 2", "Họp lúc mười bốn giờ thứ hai"),
    ("Bắt đầu từ 7h30 sáng", "Bắt đầu từ bảy giờ ba mươi phút sáng"),
    ("Cúp điện từ 8h đến 17h", "Cúp điện từ tám giờ đến mười bảy giờ"),
    ("Khai mạc lúc 19 giờ 30 tối nay", "Khai mạc lúc mười chín giờ ba mươi phút tối nay"),
    ("Bão số 3 gió giật cấp 13-14", "Bão số ba gió giật cấp mười ba đến mười bốn"),
    ("Lượng mưa phổ biến 100-200mm", "Lượng mưa phổ biến một trăm đến hai trăm mi li mét"),
    ("Nhiệt độ cao nhất 35-37°C", "Nhiệt độ cao nhất ba mươi lăm đến ba mươi bảy độ xê"),
    ("Mực nước sông lên 2,5m", "Mực nước sông lên hai phẩy năm mét"),
    ("Gió mạnh 60km/h", "Gió mạnh sáu mươi ki lô mét trên giờ"),
    ("Sóng biển cao 3-5m", "Sóng biển cao ba đến năm mét"),
    ("Diện tích ngập 12,5ha", "Diện tích ngập mười hai phẩy năm héc ta"),
    ("Hỗ trợ 1.500.000 đồng/hộ", "Hỗ trợ một triệu năm trăm nghìn đồng một hộ"),
    ("Giá 25.000đ/kg", "Giá hai mươi lăm nghìn đồng một ki lô gam"),
    ("Ủng hộ 2 tỷ đồng", "Ủng hộ hai tỷ đồng"),
    ("Tổng kinh phí 1.250.000.000 VNĐ", "Tổng kinh phí một tỷ hai trăm năm mươi triệu đồng"),
    ("Tỷ lệ tiêm chủng đạt 95%", "Tỷ lệ tiêm chủng đạt chín mươi lăm phần trăm"),
    ("Lãi suất 3,5%/năm", "Lãi suất ba phẩy năm phần trăm một năm"),
    ("Tăng 0,05% so với cùng kỳ", "Tăng không phẩy không năm phần trăm so với cùng kỳ"),
    ("Có 1.234 hộ dân bị ảnh hưởng", "Có một nghìn hai trăm ba mươi tư hộ dân bị ảnh hưởng"),
    ("Cách bờ 150km", "Cách bờ một trăm năm mươi ki lô mét"),
    ("Xe tải trên 10 tấn cấm lưu thông", "Xe tải trên mười tấn cấm lưu thông"),
    ("Theo Quyết định số 123/QĐ-UBND", "Theo Quyết định số một trăm hai mươi ba quyết định ủy ban nhân dân"),
    (
        "Thực hiện Nghị định 15/2020/NĐ-CP",
        "Thực hiện Nghị định mười lăm năm hai nghìn không trăm hai mươi nghị định chính phủ",
    ),
    ("Theo Chỉ thị 16/CT-TTg của Thủ tướng", "Theo Chỉ thị mười sáu chỉ thị thủ tướng của Thủ tướng"),
    ("Báo cáo quý III/2024", "Báo cáo quý ba năm hai nghìn không trăm hai mươi tư"),
    ("Tại Q.3, P.5, TP.HCM", "Tại quận ba, phường năm, thành phố Hồ Chí Minh"),
    ("TP. Hà Nội tổ chức diễn tập", "thành phố Hà Nội tổ chức diễn tập"),
    ("Nộp BHYT, BHXH tại UBND phường", "Nộp bảo hiểm y tế, bảo hiểm xã hội tại ủy ban nhân dân phường"),
    ("Mang theo CCCD khi đi bầu cử", "Mang theo căn cước công dân khi đi bầu cử"),
    ("Học sinh THCS và THPT nghỉ học", "Học sinh trung học cơ sở và trung học phổ thông nghỉ học"),
    ("Phòng GD&ĐT quận thông báo", "Phòng giáo dục và đào tạo quận thông báo"),
    ("Dịch COVID-19 diễn biến phức tạp", "Dịch cô vít mười chín diễn biến phức tạp"),
    ("Xem chi tiết tại https://hoabinh.gov.vn/tin-tuc/123", "Xem chi tiết tại"),
    ("Gửi phản ánh về email hotro@hoabinh.gov.vn", "Gửi phản ánh về email"),
    ("<p>Thông báo <b>khẩn</b></p>", "Thông báo khẩn."),
    ("**Khẩn cấp**: sơ tán ngay", "Khẩn cấp: sơ tán ngay"),
    ("THÔNG BÁO KHẨN CẤP", "thông báo khẩn cấp"),
    ("Cảnh báo lũ quét 🌊 tại thôn 3", "Cảnh báo lũ quét tại thôn ba"),
    ("Thuỷ triều cường vào chiều nay", "Thủy triều cường vào chiều nay"),
    ("Chúc bà con hoà thuận, mạnh khoẻ", "Chúc bà con hòa thuận, mạnh khỏe"),
    ("Số nhà 12/3 đường Lê Lợi", "Số nhà mười hai trên ba đường Lê Lợi"),
    ("Đề nghị bà con chằng chống nhà cửa…", "Đề nghị bà con chằng chống nhà cửa."),
    ("Chiều dài 1.5 km", "Chiều dài một chấm năm ki lô mét"),
    ("Đ/c Nguyễn Văn A, Chủ tịch UBND", "đồng chí Nguyễn Văn A, Chủ tịch ủy ban nhân dân"),
    ("Giải thưởng 10 triệu đồng & bằng khen", "Giải thưởng mười triệu đồng và bằng khen"),
    ("Tổ 7 - khu phố 2 mất nước", "Tổ bảy - khu phố hai mất nước"),
    ("Trạm y tế (TYT) tiêm chủng miễn phí", "Trạm y tế (trạm y tế) tiêm chủng miễn phí"),
    ("Ngày 2/9 là Quốc khánh", "Ngày hai tháng chín là Quốc khánh"),
    ("Dự kiến 21 hộ, 101 nhân khẩu", "Dự kiến hai mươi mốt hộ, một trăm linh một nhân khẩu"),
]


def test_table_has_at_least_sixty_phrases() -> None:
    assert len(BULLETIN_PHRASES) >= 60


@pytest.mark.parametrize(("written", "spoken"), BULLETIN_PHRASES, ids=[w[:40] for w, _ in BULLETIN_PHRASES])
def test_bulletin_phrase_is_read_out_in_words(written: str, spoken: str) -> None:
    prepared = prepare(written)
    assert prepared.text == spoken
    assert not any(ch.isdigit() for ch in prepared.text)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "không"),
        (10, "mười"),
        (15, "mười lăm"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (1005, "một nghìn không trăm linh năm"),
        (2_000_000, "hai triệu"),
        (1_000_000_000, "một tỷ"),
        (3_000_000_000_000, "ba nghìn tỷ"),
        (-5, "âm năm"),
    ],
)
def test_integers_follow_northern_reading_rules(n: int, words: str) -> None:
    assert read_integer(n) == words


def test_composed_and_decomposed_diacritics_give_identical_output() -> None:
    text = "Ủy ban nhân dân phường thông báo: bão số 3 đổ bộ lúc 14h ngày 12/9."
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    assert prepare(decomposed) == prepare(text)
    assert unicodedata.is_normalized("NFC", prepare(decomposed).text)


def test_old_and_new_tone_placement_give_identical_output() -> None:
    assert prepare("Hoà bình, thuỷ lợi, khoẻ mạnh").text == prepare("Hòa bình, thủy lợi, khỏe mạnh").text
    assert prepare("quý khách, hoàng hôn").text == "quý khách, hoàng hôn"


def test_unspeakable_characters_are_removed_and_reported() -> None:
    prepared = prepare("Cảnh báo 🌊 lũ quét ★ tại 洪水 thôn Ba")
    assert prepared.unspeakable == tuple(sorted({"🌊", "★", "洪", "水"}))
    assert prepared.text == "Cảnh báo lũ quét tại thôn Ba"


@pytest.mark.parametrize("text", ["", "   \n\t", "🌊🌊", "https://example.vn/only-a-link", "<b></b>"])
def test_text_with_nothing_to_speak_is_refused(text: str) -> None:
    with pytest.raises(TextRefused):
        prepare(text)


def test_long_text_is_split_at_sentence_boundaries_within_the_limit() -> None:
    sentence = "Đề nghị bà con chủ động sơ tán người và tài sản đến nơi an toàn trước khi bão đổ bộ."
    prepared = prepare(" ".join([sentence] * 30), max_chunk_chars=200)
    assert len(prepared.chunks) > 1
    assert all(len(chunk) <= 200 for chunk in prepared.chunks)
    assert all(chunk.endswith(".") for chunk in prepared.chunks)
    assert " ".join(prepared.chunks) == prepared.text


def test_over_long_sentence_is_cut_at_commas_then_spaces() -> None:
    sentence = ", ".join(["phường Hòa Bình", "phường An Lạc", "phường Tân Phú"] * 20) + "."
    chunks = split_sentences(sentence, max_chars=100)
    assert all(len(c) <= 100 for c in chunks)
    assert "".join(chunks).replace(" ", "").replace(",", "") == sentence.replace(" ", "").replace(",", "")
    assert split_sentences("a" * 250, max_chars=100) == ("a" * 100, "a" * 100, "a" * 50)


def test_prepared_text_is_a_frozen_value() -> None:
    prepared = prepare("Thông báo")
    assert isinstance(prepared, PreparedText)
    with pytest.raises(AttributeError):
        prepared.text = "x"  # type: ignore[misc]
