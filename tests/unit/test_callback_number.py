import pytest
from hypothesis import given, strategies as st

from ivr.triage.callback_number import find_callback_number, spoken_digits

CN = "零一二三四五六七八九"


@pytest.mark.parametrize("text,number", [
    ("我 的 电话 是 幺 三 八 零 零 幺 三 八 零 零 零", "13800138000"),
    ("回拨 号码 13800138000", "13800138000"),
    ("联系 电话 138 0013 8000", "13800138000"),
    ("号码 是 一 三 九 ， 二 二 三 三 ， 四 四 五 五", "13922334455"),
    ("电话 一 八 九 两 两 六 六 七 七 八 八", "18922667788"),
    ("联系 电话 零 七 五 九 二 二 三 四 五 六 七", "07592234567"),
    ("回电 打 洞 七 五 九 三 三 八 八 一 二 三", "07593388123"),
    ("我 的 电话 是 二 二 八 八 六 六 九", "2288669"),
    ("电话 是 八 八 六 六 一 二 三 四", "88661234"),
    ("我 在 霞山区 住 手机 幺 三 五 七 五 九 零 一 二 三 四 地址 是 三 栋", "13575901234"),
    ("电话 一三八零零一三八零零零 八十八 号", "13800138000"),
    ("有 事 打 一 三 八 零 零 一 三 八 零 零 零", "13800138000"),       # a mobile needs no announcement
    ("号码 是 八六 一 三 八 零 零 一 三 八 零 零 零", "13800138000"),
])
def test_callback_numbers(text, number):
    assert find_callback_number(text) == number


@pytest.mark.parametrize("text", [
    "住 在 三 栋 五 零 二 房",
    "一直 停水 两 三 天 了",
    "车牌 是 粤 G 幺 二 三 四 五",
    "拖欠 工资 八 千 五 百 块",
    "有 个 二 二 八 八 六 六 九 的 东西",          # 7 digits without an announcement
    "电话 打 了 好 几 次 都 没 人 接",
    "",
])
def test_no_callback_number(text):
    assert find_callback_number(text) is None


def test_spoken_digits_drop_separators():
    assert spoken_digits("幺 三 八-洞 两") == "13802"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["电话 是", "回拨", "号码 是", "我 的 手机"]),
       st.booleans())
def test_any_spoken_mobile_is_recovered(number, announce, chinese):
    spoken = " ".join(CN[int(d)] if chinese else d for d in number)
    assert find_callback_number(f"我 要 投诉 {announce} {spoken} 谢谢") == number
