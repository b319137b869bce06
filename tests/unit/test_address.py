import pytest
from hypothesis import given, strategies as st

from ivr.triage.address import DISTRICTS, arabic_numbers, chinese_number, find_address


@pytest.mark.parametrize("spoken,value", [
    ("八", 8), ("十", 10), ("十五", 15), ("二十", 20), ("八十八", 88), ("一百", 100), ("一百零五", 105),
    ("一百二十", 120), ("两百", 200), ("两千零一", 2001), ("五零二", 502), ("幺零幺", 101), ("洞洞七", 7),
])
def test_chinese_numbers(spoken, value):
    assert chinese_number(spoken) == value


@given(st.integers(1, 9999))
def test_positional_readings_round_trip(n):
    digits = "零一二三四五六七八九"
    parts, out = [(1000, "千"), (100, "百"), (10, "十")], ""
    rest, zero = n, False
    for unit, char in parts:
        q, rest = divmod(rest, unit)
        if q:
            out += ("零" if zero and out else "") + digits[q] + char
            zero = False
        elif out:
            zero = True
    if rest:
        out += ("零" if zero and out else "") + digits[rest]
    assert chinese_number(out) == n


def test_only_numbers_before_a_number_suffix_become_arabic():
    assert arabic_numbers("一直 停 了 两天 在 八十八 号 三 栋 五零二 室") == "一直 停 了 两天 在 88号 3栋 502室"


@pytest.mark.parametrize("text,address", [
    ("我 要 投诉 赤坎区 人民 大道 南 八十八 号 噪音 扰民", "赤坎区人民大道南88号"),
    ("我 家 住 在 海滨 大道 中 八十八 号", "海滨大道中88号"),
    ("湛江 市 霞山区 解放 西路 三 号", "霞山区解放西路3号"),
    ("麻章区 湖光 镇 旧县 村 有 人 偷排", "麻章区湖光镇旧县村"),
    ("遂溪 县 城 月 镇", "遂溪县城月镇"),
    ("霞山区 绿 华 小区 七 栋 二 单元 五零二 室", "霞山区绿华小区7栋2单元502室"),
    ("坡头区 南调 街道 麻斜 社区", "坡头区南调街道麻斜社区"),
    ("东海岛 东山 镇", "东海岛东山镇"),
    ("湛江经济技术开发区 乐华 小区", "湛江经济技术开发区乐华小区"),
    ("廉江市 石城 镇", "廉江市石城镇"),
    ("雷州市 雷 城 镇 西湖 大道", "雷州市雷城镇西湖大道"),
    ("徐闻 县 下桥 镇", "徐闻县下桥镇"),
    ("吴川市 梅 录 街道 人民 路 八 号", "吴川市梅录街道人民路8号"),
    ("麻章区 太平 镇", "麻章区太平镇"),
    ("中山 一路 路口 有 个 坑", "中山一路"),
    ("解放 东路 路面 塌陷", "解放东路"),
    ("举报 霞山区 有 个 黑作坊 在 海头 街道", "霞山区海头街道"),
    ("投诉 霞山区 海滨 宾馆 附近", "霞山区"),
])
def test_addresses(text, address):
    assert find_address(text) == address


@pytest.mark.parametrize("text", [
    "马路 上 有 个 大坑",
    "这 条 街 很 吵",
    "投诉 二十五 路 公交 司机",
    "请问 公交 线路 有 哪些",
    "我们 小区 里 很 吵",
    "从 十 号 开始 停水",
    "老板 跑路 了",
    "咨询 城乡居民医保",
    "",
])
def test_no_address(text):
    assert find_address(text) is None


@pytest.mark.parametrize("district", DISTRICTS)
def test_every_district_is_an_address_on_its_own(district):
    assert find_address(f"在 {district} 这边") == district


@given(st.text(alphabet="在我家住路大道街巷村镇号栋楼室一二三八十区赤坎霞山 0123", max_size=30))
def test_an_address_is_a_piece_of_the_spaceless_transcript(text):
    address = find_address(text)
    assert address is None or address.strip() and " " not in address
