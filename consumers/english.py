"""The document's English rendering: each text of its Vietnamese template in English
(consumers/document.py, `Words`). A text missing here fails the English rendering, and
its test, instead of leaving Vietnamese in an English document. The names of the
figures are not here: they are the glossary's (consumers/glossary.py), in both
languages."""

from __future__ import annotations

ENGLISH = {
    # The letterhead, the title and the signature block.
    "Báo cáo": "Report",
    "BÁO CÁO": "REPORT",
    "Số:": "No.:",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM": "SOCIALIST REPUBLIC OF VIET NAM",
    "Độc lập - Tự do - Hạnh phúc": "Independence - Freedom - Happiness",
    "Kết quả giải quyết thủ tục hành chính {period}":
        "Results of administrative procedures, {period}",
    " của {agency}": ", {agency}",
    "Kính gửi:": "To:",
    "Nơi nhận:": "Copies to:",
    "(Ký, ghi rõ họ tên và đóng dấu)": "(Signature, full name and seal)",
    "Số liệu tạm tính đến {time} ngày {day}": "Provisional figures as of {time} on {day}",
    "kỳ báo cáo chưa kết thúc, số liệu sẽ thay đổi.":
        "the period is not over and the figures will change.",
    # Section headings.
    "TÌNH HÌNH CHUNG": "OVERVIEW",
    "KẾT QUẢ SO VỚI MỤC TIÊU": "RESULTS AGAINST THE TARGETS",
    "KẾT QUẢ THEO CƠ QUAN": "RESULTS BY AGENCY",
    "XẾP HẠNG": "RANKING",
    "KẾT QUẢ THEO LĨNH VỰC VÀ THỦ TỤC": "RESULTS BY FIELD AND PROCEDURE",
    "HỒ SƠ QUÁ HẠN": "LATE CASES",
    "THỜI GIAN CHỜ TẠI BỘ PHẬN MỘT CỬA": "WAITS AT THE ONE-STOP CENTRES",
    # The summary.
    "toàn tỉnh": "the province",
    "Trong {period}, {who} tiếp nhận {received} hồ sơ{change}, trong đó {received_online}"
    " hồ sơ trực tuyến, {received_counter} hồ sơ trực tiếp và {received_postal} hồ sơ "
    "qua bưu chính.":
        "In {period}, {who} received {received} cases{change}: {received_online} online, "
        "{received_counter} at the counter and {received_postal} by post.",
    "Đã giải quyết {ended} hồ sơ: {early} trước hạn, {on_time} đúng hạn, {late} quá "
    "hạn. {rate_name} {rate}{change}{judged}.":
        "{ended} cases were ended: {early} early, {on_time} on time, {late} late. "
        "{rate_name}: {rate}{change}{judged}.",
    ", đạt mục tiêu {target}": ", meeting the target of {target}",
    ", chưa đạt mục tiêu {target}": ", short of the target of {target}",
    "Cuối kỳ còn {overdue_open} hồ sơ đang quá hạn.":
        "At the end of the period {overdue_open} open cases were overdue.",
    "Đến thời điểm báo cáo còn {overdue_open} hồ sơ đang quá hạn.":
        "At the time of the report {overdue_open} open cases are overdue.",
    "{apologies_required} hồ sơ phải có văn bản xin lỗi: {apologies_in_time} "
    "{in_time_name}, {apologies_late} {late_name}, {apologies_missing} {missing_name}.":
        "{apologies_required} cases required an apology letter: {apologies_in_time} "
        "{in_time_name}, {apologies_late} {late_name}, {apologies_missing} {missing_name}.",
    "{transfers_name} giữa các cơ quan {transfers}; {online_name} {online}; "
    "{paid_name} {paid}.":
        "{transfers_name} between agencies: {transfers}; {online_name}: {online}; "
        "{paid_name}: {paid}.",
    "Tại Bộ phận Một cửa, {visits} lượt chờ, {within} được phục vụ trong vòng 15 phút.":
        "At the one-stop centres, {visits} visits waited; {within} were served within "
        "15 minutes.",
    "không đổi": "unchanged",
    "tăng {points} điểm %": "up {points} percentage points",
    "giảm {points} điểm %": "down {points} percentage points",
    "tăng {share}": "up {share}",
    "giảm {share}": "down {share}",
    "so với kỳ trước": "on the previous period",
    "so với cùng kỳ năm trước": "on the same period last year",
    # Charts.
    "mục tiêu {target}": "target {target}",
    "{name} theo cơ quan": "{name} by agency",
    "{name} qua các kỳ": "{name} across periods",
    "{late} và {overdue} theo lĩnh vực": "{late} and {overdue} by field",
    "{name} theo Bộ phận Một cửa": "{name} by one-stop centre",
    # Tables and their headings.
    "Không có.": "None.",
    "Không có hồ sơ.": "No cases.",
    "Không có hồ sơ quá hạn.": "No late cases.",
    "Không có lượt chờ trong kỳ.": "No visits waited in the period.",
    "Các sở, ban, ngành và cơ quan cấp tỉnh": "Provincial departments and agencies",
    "Ủy ban nhân dân cấp xã và các phòng trực thuộc":
        "Commune People's Committees and their offices",
    "Cộng": "Total",
    "Toàn tỉnh": "Province",
    "Cấp tỉnh": "Provincial level",
    "Cấp xã": "Commune level",
    "Theo lĩnh vực": "By field",
    "Thủ tục có nhiều hồ sơ quá hạn nhất": "Procedures most often late",
    "Danh sách hồ sơ quá hạn (quá hạn nhiều nhất trước)": "Late cases, most days late first",
    "Cơ quan": "Agency",
    "Lĩnh vực": "Field",
    "Thủ tục": "Procedure",
    "Mã hồ sơ": "Case",
    "Cơ quan giải quyết": "Handling agency",
    "Hẹn trả": "Due",
    "Số ngày quá hạn": "Days late",
    "Tình trạng": "Status",
    "Đơn vị chịu trách nhiệm": "Responsible",
    "Xin lỗi": "Apology",
    "Hạng": "Rank",
    "Bộ phận Một cửa": "One-stop centre",
    "Chỉ tiêu": "Indicator",
    "Kết quả": "Result",
    "Đánh giá": "Judged",
}
