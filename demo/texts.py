"""Category weights and the phrases that fill summaries, terms and notes."""

from __future__ import annotations

# Share of each dispute category (大調解 caseloads: family and neighbourhood first).
DISPUTE_CATEGORY_WEIGHTS: dict[str, float] = {
    "marriage_family": 21,
    "neighbourhood": 19,
    "land": 6,
    "demolition": 4,
    "labour": 8,
    "wage_arrears": 7,
    "contract": 7,
    "property_management": 6,
    "medical": 2,
    "traffic": 8,
    "environment": 2,
    "consumer": 3,
    "damages": 5,
    "enterprise_restructuring": 1,
    "other": 1,
}
DISPUTE_SOURCE_WEIGHTS: dict[str, float] = {
    "walk_in": 44,
    "screening": 22,
    "referral": 10,
    "petition": 7,
    "court": 7,
    "police": 8,
    "procuratorate": 2,
}
DISPUTE_SUMMARIES: dict[str, tuple[str, ...]] = {
    "marriage_family": ("双方因离婚后子女抚养费支付发生争议", "家庭成员因老人赡养费分担产生矛盾", "夫妻因家庭财产分割发生纠纷"),
    "neighbourhood": ("相邻双方因宅基地界址发生争执", "楼上住户装修漏水致楼下受损引发纠纷", "邻里因通行道路及排水问题发生矛盾"),
    "land": ("村民因土地承包经营权流转收益分配发生争议", "双方因承包地边界不清发生纠纷"),
    "demolition": ("被征收户对房屋征收补偿标准有异议", "拆迁安置房分配顺序引发争议"),
    "labour": ("员工因解除劳动合同经济补偿与用人单位发生争议", "职工工伤待遇支付引发劳动争议"),
    "wage_arrears": ("建筑工地农民工工资拖欠引发纠纷", "务工人员被拖欠三个月工资要求支付"),
    "contract": ("双方因买卖合同货款支付发生纠纷", "房屋租赁合同提前解除引发争议"),
    "property_management": ("业主因物业服务质量拒交物业费引发纠纷", "小区停车位管理引发业主与物业公司矛盾"),
    "medical": ("患者家属对诊疗结果有异议要求赔偿", "医患双方因手术并发症赔偿发生争议"),
    "traffic": ("双方因道路交通事故损害赔偿发生争议", "电动车与行人相撞医疗费赔偿发生纠纷"),
    "environment": ("企业排放噪声影响周边居民生活引发纠纷", "养殖场污水排放影响农田引发矛盾"),
    "consumer": ("消费者因预付卡退款问题与商家发生纠纷", "购买家电质量问题退换货引发争议"),
    "damages": ("宠物伤人引发人身损害赔偿纠纷", "施工损坏相邻房屋引发财产损害赔偿纠纷"),
    "enterprise_restructuring": ("企业改制职工安置及经济补偿引发集体争议",),
    "other": ("双方因民间借贷还款发生纠纷",),
}  # fmt: skip
AGREEMENT_TERMS = (
    "被申请人分期支付赔偿款，双方不再就此事发生争议",
    "双方确认界址，被申请人拆除越界部分",
    "用人单位一次性支付经济补偿，劳动关系依法解除",
    "双方同意按协议金额一次性了结，今后互不追究",
    "被申请人书面致歉并承担维修费用",
)
FAILURE_REASONS = (
    "双方对赔偿数额分歧较大，经多次调解未能达成一致",
    "一方坚持通过诉讼解决",
    "争议涉及权属确认，需经有关部门裁决",
)
REFUSAL_REASONS = ("被申请人明确表示不同意调解", "一方当事人拒绝参加调解")
WITHDRAWAL_REASONS = ("双方已自行和解，申请人撤回申请", "申请人表示不再主张权利")
RETURN_REASONS = ("涉及多个部门职能，调处困难，回流调处中心会办", "调处无效，按程序回流")
DEPARTMENTS = ("司法所", "派出所", "人社所", "国土所", "城管中队", "住建局", "信访办", "法庭")
RESULT_SUMMARIES = {
    "agreement_reached": "调解成功，已制作调解协议书并告知当事人",
    "mediation_failed": "调解不成，已告知当事人通过其他途径解决",
    "refused": "当事人拒绝调解，已告知其他救济途径",
    "withdrawn": "申请人撤回，予以结案",
}
SUPERVISION_INSTRUCTIONS = ("限期调处并报告结果", "重点关注，防止矛盾激化")
WARNING_NOTES = ("当事人情绪激动，存在激化风险", "涉及人数较多，有聚集苗头")
SESSION_NOTES = ("听取双方陈述，释法说理", "背靠背调解，缩小分歧", "组织双方面对面协商")

INSTITUTIONS = (
    "江苏省南京监狱", "江苏省龙潭监狱", "江苏省浦口监狱", "江苏省江宁监狱", "江苏省金陵监狱",
    "江苏省苏州监狱", "江苏省无锡监狱", "江苏省常州监狱", "江苏省南通监狱", "江苏省徐州监狱",
    "江苏省彭城监狱", "江苏省洪泽湖监狱", "江苏省连云港监狱", "江苏省镇江监狱", "江苏省宜兴监狱",
    "江苏省女子监狱", "江苏省未成年犯管教所",
)  # fmt: skip
OFFENCES = (
    ("盗窃罪", 30), ("诈骗罪", 12), ("故意伤害罪", 12), ("寻衅滋事罪", 8), ("抢劫罪", 5),
    ("开设赌场罪", 4), ("走私、贩卖、运输、制造毒品罪", 6), ("交通肇事罪", 5),
    ("危险驾驶罪", 6), ("职务侵占罪", 3), ("非法吸收公众存款罪", 3), ("聚众斗殴罪", 3),
    ("帮助信息网络犯罪活动罪", 3),
)  # fmt: skip
ACTIVITY_NOTES = {
    "visit": "上门走访，了解家庭及就业情况",
    "talk": "个别谈话，开展思想帮教",
    "education": "参加法治教育和心理健康讲座",
    "help": "协助办理社会保险和就业登记",
}
COURSES = ("电工", "焊工", "中式烹调", "汽车维修", "家政服务", "电子商务", "叉车操作", "美容美发")
PLACEMENT_END_REASONS = ("过渡期满，转入社会就业", "劳动合同到期", "本人辞职另谋职业")
