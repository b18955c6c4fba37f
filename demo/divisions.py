"""Jiangsu's counties (GB/T 2260) and synthetic townships (GB/T 10114) under them.

The 95 county-level divisions are real codes and names; townships are generated from a
table of common place-name stems, with 9-digit codes that follow GB/T 10114 (001–099
streets 街道, 100–199 towns 镇), so the tree looks like the province's own.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVINCE = "320000"

# city code → (city name, population in millions (2020 census, rounded): weights the cases)
CITIES: dict[str, tuple[str, float]] = {
    "320100": ("南京市", 9.3),
    "320200": ("无锡市", 7.5),
    "320300": ("徐州市", 9.1),
    "320400": ("常州市", 5.3),
    "320500": ("苏州市", 12.7),
    "320600": ("南通市", 7.7),
    "320700": ("连云港市", 4.6),
    "320800": ("淮安市", 4.6),
    "320900": ("盐城市", 6.7),
    "321000": ("扬州市", 4.6),
    "321100": ("镇江市", 3.2),
    "321200": ("泰州市", 4.5),
    "321300": ("宿迁市", 5.0),
}

COUNTIES: dict[str, str] = {
    "320102": "玄武区", "320104": "秦淮区", "320105": "建邺区", "320106": "鼓楼区",
    "320111": "浦口区", "320113": "栖霞区", "320114": "雨花台区", "320115": "江宁区",
    "320116": "六合区", "320117": "溧水区", "320118": "高淳区",
    "320205": "锡山区", "320206": "惠山区", "320211": "滨湖区", "320213": "梁溪区",
    "320214": "新吴区", "320281": "江阴市", "320282": "宜兴市",
    "320302": "鼓楼区", "320303": "云龙区", "320305": "贾汪区", "320311": "泉山区",
    "320312": "铜山区", "320321": "丰县", "320322": "沛县", "320324": "睢宁县",
    "320381": "新沂市", "320382": "邳州市",
    "320402": "天宁区", "320404": "钟楼区", "320411": "新北区", "320412": "武进区",
    "320413": "金坛区", "320481": "溧阳市",
    "320505": "虎丘区", "320506": "吴中区", "320507": "相城区", "320508": "姑苏区",
    "320509": "吴江区", "320581": "常熟市", "320582": "张家港市", "320583": "昆山市",
    "320585": "太仓市",
    "320612": "通州区", "320613": "崇川区", "320614": "海门区", "320623": "如东县",
    "320681": "启东市", "320682": "如皋市", "320685": "海安市",
    "320703": "连云区", "320706": "海州区", "320707": "赣榆区", "320722": "东海县",
    "320723": "灌云县", "320724": "灌南县",
    "320803": "淮安区", "320804": "淮阴区", "320812": "清江浦区", "320813": "洪泽区",
    "320826": "涟水县", "320830": "盱眙县", "320831": "金湖县",
    "320902": "亭湖区", "320903": "盐都区", "320904": "大丰区", "320921": "响水县",
    "320922": "滨海县", "320923": "阜宁县", "320924": "射阳县", "320925": "建湖县",
    "320981": "东台市",
    "321002": "广陵区", "321003": "邗江区", "321012": "江都区", "321023": "宝应县",
    "321081": "仪征市", "321084": "高邮市",
    "321102": "京口区", "321111": "润州区", "321112": "丹徒区", "321181": "丹阳市",
    "321182": "扬中市", "321183": "句容市",
    "321202": "海陵区", "321203": "高港区", "321204": "姜堰区", "321281": "兴化市",
    "321282": "靖江市", "321283": "泰兴市",
    "321302": "宿城区", "321311": "宿豫区", "321322": "沭阳县", "321323": "泗阳县",
    "321324": "泗洪县",
}  # fmt: skip

# Common stems of Jiangsu township and street names.
TOWNSHIP_STEMS = (
    "城东", "城西", "城南", "城北", "新桥", "长安", "东湖", "西湖", "南湖", "北湖",
    "梅园", "桃园", "杏林", "柳营", "枫桥", "横塘", "双桥", "三河", "五里", "七里",
    "黄桥", "白马", "金沙", "银河", "青龙", "凤凰", "龙潭", "虎山", "云台", "马坝",
    "张庄", "王集", "李营", "陈墩", "周庄", "吴桥", "孙圩", "杨港", "朱湖", "徐庄",
    "东坝", "西坝", "湖塘", "河口", "新港", "古城", "永安", "太平", "和平", "兴隆",
    "大港", "小河", "高塘", "下蜀", "上党", "中兴", "丰收", "富民", "仁和", "安丰",
)  # fmt: skip
VILLAGE_SUFFIXES = ("村", "社区")
ROADS = (
    "中山路", "人民路", "解放路", "建设路", "长江路", "和平路", "新华路", "文化路",
    "青年路", "朝阳路", "胜利路", "友谊路", "淮海路", "北京路", "健康路", "幸福路",
)  # fmt: skip


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    parent: str


def city_of(code: str) -> str:
    return code[:4] + "00"


def county_of(code: str) -> str:
    return code[:6]


def is_district(county_code: str) -> bool:
    return COUNTIES[county_code].endswith("区")


def townships(county_code: str, count: int) -> list[Division]:
    """`count` townships of a county; the same code always gets the same name."""
    offset = int(county_code) % len(TOWNSHIP_STEMS)
    result = []
    streets = (count + 1) // 2 if is_district(county_code) else max(1, count // 4)
    for i in range(count):
        stem = TOWNSHIP_STEMS[(offset + 7 * i) % len(TOWNSHIP_STEMS)]
        if i < streets:
            code, name = f"{county_code}{i + 1:03d}", f"{stem}街道"
        else:
            code, name = f"{county_code}{100 + i - streets + 1:03d}", f"{stem}镇"
        result.append(Division(code, name, county_code))
    return result


def province_divisions(townships_per_county: int) -> list[Division]:
    """Every county of Jiangsu with `townships_per_county` townships each."""
    result = []
    for code, name in COUNTIES.items():
        result.append(Division(code, name, city_of(code)))
        result.extend(townships(code, townships_per_county))
    return result


def full_name(code: str, names: dict[str, str]) -> str:
    """江苏省南京市玄武区梅园新村街道: a unit's name with those above it."""
    parts = ["江苏省", CITIES[city_of(code)][0]]
    if len(code) >= 6 and code[:6] in COUNTIES:
        parts.append(COUNTIES[code[:6]])
    if len(code) >= 9:
        parts.append(names[code[:9]])
    return "".join(parts)
