"""The units every test store starts with, below Jiangsu's seeded province and cities."""

TEST_UNITS = [
    {"code": "320102", "name": "玄武区", "parent": "320100"},
    {"code": "320102001", "name": "梅园新村街道", "parent": "320102"},
    {"code": "320102001001", "name": "大悲巷社区", "parent": "320102001"},
    {"code": "320104", "name": "秦淮区", "parent": "320100"},
    {"code": "320104002", "name": "夫子庙街道", "parent": "320104"},
]
