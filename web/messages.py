"""Refusal messages in the users' language: a catalogue keyed by the stable error `code`.

English (the message the refusal was raised with) stays the default; a request that
prefers Chinese (`Accept-Language: zh`, `zh-CN`, `zh-Hans`) or a CLI run under
`LANG=zh_CN.UTF-8` / `CASETRAIL_LANG=zh` gets the simplified Chinese line for its code.
The codes never change; `details` keep their field names. Every code raised anywhere has
an entry here (tests/web/test_messages.py greps the code for them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

MESSAGES_ZH: dict[str, str] = {
    # HTTP-level refusals and the store (web/errors.py, web/limits.py, store/).
    "malformed_request": "请求正文不是有效的 JSON。",
    "unauthorized": "身份验证失败：需要有效的令牌（Authorization: Bearer TOKEN）。",
    "forbidden": "您的角色或管辖范围不允许此操作。",
    "not_found": "此地址没有内容。",
    "method_not_allowed": "此地址不支持该请求方法。",
    "conflict": "请求与当前状态冲突。",
    "request_timeout": "请求超时。",
    "body_too_large": "请求正文过大。",
    "uri_too_long": "请求地址过长。",
    "unsupported_media_type": "请求正文须为 JSON（Content-Type: application/json）。",
    "invalid_data": "请求数据不符合格式要求。",
    "too_many_requests": "请求过于频繁，请稍后重试。",
    "rate_limited": "此令牌的请求过于频繁，请稍后重试。",
    "headers_too_large": "请求头过大。",
    "unavailable": "服务暂时不可用，请稍后重试。",
    "storage_unavailable": "案件存储暂时无法写入或连接；未作任何更改，请稍后重试。",
    "internal_error": "服务器内部出错。",
    "error": "请求被拒绝。",
    # Refusals of the domain and the service (domain/errors.py and the rules).
    "rule_violation": "此操作违反业务规则。",
    "unknown_event_type": "未知的事件类型。",
    "case_not_found": "找不到该案件。",
    "version_conflict": "案件已被他人更新（版本冲突）；请按当前版本重试。",
    "idempotency_key_reused": "同一幂等键已用于另一内容不同的请求。",
    "unknown_unit": "该单位不存在。",
    "wrong_opening_event": "此类案件须以规定的立案事件开始。",
    "case_already_open": "该案件已立案，不能再次立案。",
    "not_allowed_in_status": "案件当前状态下不能记录此事件。",
    "role_cannot_write": "您的角色不能记录案件事件。",
    "supervisor_only": "只有主管人员可以记录此事件。",
    "date_in_future": "日期不能晚于今天。",
    "date_out_of_order": "日期早于应在其之前的日期，顺序不对。",
    "outside_jurisdiction": "此案件或单位不在您单位的管辖范围内。",
    "role_not_permitted": "您的角色不能执行此操作。",
    "auditors_only": "只有审计人员可以查看。",
    # Disputes (人民调解).
    "parties_on_both_sides": "纠纷至少需要一名申请人和一名被申请人。",
    "center_unit_mismatch": "登记纠纷的调处中心须为登记所在单位（统一受理）。",
    "reassignment_before_joint_handling": "退回的纠纷须经中心联合处理后才能重新指派。",
    "already_assigned": "纠纷已指派；只有退回并经联合处理后才能重新指派。",
    "extension_needs_county_supervisor": "延长期限须由县级或以上主管人员决定。",
    "extension_already_granted": "期限已延长过，不能再次延长。",
    "extension_beyond_limit": "延长后的期限超过了法定上限。",
    "extension_not_later": "新期限须晚于当前期限。",
    "failure_before_mediation": "至少进行一次调解后才能记录调解不成。",
    "agreement_before_mediation": "至少进行一次调解后才能达成调解协议。",
    "refusal_after_mediation": "调解已经进行；当事人终止调解应记为调解不成，而非拒绝调解。",
    "judicial_confirmation_without_agreement": "申请司法确认须有调解协议。",
    "judicial_confirmation_already_requested": "已经申请过司法确认。",
    "already_turned_criminal": "该纠纷已登记为民转刑案件。",
    "judicial_confirmation_out_of_time": "司法确认须在调解协议生效后三十日内申请。",
    "follow_up_before_close": "回访须在结案之后。",
    # Resettlement (安置帮教).
    "key_person_not_escorted": "重点人员须必接必送，不能自行报到。",
    "delegation_to_same_unit": "帮教只能委托给其他单位；本单位已在办理此案。",
    "already_placed": "该人员已有安置；请先记录安置结束。",
    "base_id_required": "在过渡性安置基地安置须注明基地（base_id）。",
    "base_id_without_transitional_base": "只有过渡性安置基地的安置才注明基地（base_id）。",
    "not_placed": "该人员目前没有可结束的安置。",
    "assistance_period_not_completed": "帮教期尚未届满。",
    # Community correction (社区矫正).
    "not_eligible_in_province": "社区矫正在居住地执行：该人员的住址须在本省。",
    "report_in_before_decision": "矫正对象须在决定生效后报到。",
    "female_subject_needs_woman_on_team": "女性矫正对象的矫正小组须有女性成员。",
    "subject_absconded": "矫正对象已脱管；请先记录已查找到。",
    "leave_request_pending": "尚有一项请假申请等待审批。",
    "leave_overlaps": "请假时间与已批准的请假重叠。",
    "leave_needs_county_supervisor": "此天数的请假须由县级主管人员审批。",
    "leave_needs_township_supervisor": "请假须由乡镇级或以上主管人员审批。",
    "leave_not_requested": "没有与该目的地和日期相符的待批请假申请。",
    "leave_not_approved": "没有与该目的地和日期相符、已批准且未销假的请假。",
    "returned_before_leave": "请假开始之前不能销假。",
    "leave_too_long": "请假天数超过上限。",
    "monitoring_needs_county_supervisor": "电子监管须由县级或以上主管人员决定。",
    "monitoring_until_not_after_start": "电子监管的截止日期须晚于今天。",
    "monitoring_too_long": "电子监管期限超过上限。",
    "monitoring_overlaps": "电子监管正在执行中。",
    "monitoring_not_running": "没有正在执行的电子监管。",
    "residence_unit_unchanged": "该案件已由该单位办理。",
    "revocation_not_applicable": "此类矫正对象不适用撤销，请改为提请治安管理处罚。",
    "revocation_grounds_not_borne_out": "案件记录不足以支持所提出的撤销理由。",
    "committal_not_applicable": "此类矫正对象不适用收监执行。",
    "committal_without_revocation_proposal": "收监执行须在提请撤销之后。",
    "not_absconded": "矫正对象未处于脱管状态。",
    "already_absconded": "矫正对象已处于脱管状态。",
    "located_before_absconding": "查找到的日期不能早于脱管日期。",
    "completion_before_term_end": "矫正期满前不能记录矫正期满解除。",
    "sanction_out_of_order": "处罚须逐级适用，不能越级。",
    "outside_term": "日期不在矫正期内。",
    # Audit, directory, store and command line.
    "event_not_found": "该位置没有事件。",
    "not_yet_checkpointed": "该事件尚未纳入签名检查点。",
    "checkpoint_not_found": "找不到该检查点。",
    "log_inconsistent": "事件日志与已签名的检查点不一致。",
    "unit_exists": "该单位已存在。",
    "user_not_found": "找不到该用户。",
    "token_expired": "令牌已过期；请管理员重新签发。",
    "user_disabled": "该用户已被停用。",
    "self_disable": "管理员不能停用自己。",
    "parent_not_implied": "单位须位于其代码所对应的上级单位之下。",
    "root_unit": "只有省级部署才能新增省级单位。",
    "root_admin_only": "只有省级管理员才能导入单位文件。",
    "bad_config": "配置有误。",
    "no_store": "此数据目录中没有案件存储。",
    # `casetrail store migrate` (cli/migrate.py): an old store rewritten with per-person keys.
    "bad_source": "无法以只读方式打开源存储。",
    "cannot_decode": "源存储中的事件无法解读（密钥不对？）。",
    "checkpoint_behind": "源存储的最新检查点未覆盖全部日志，请先签署检查点。",
    "has_person_keys": "源存储已按人分设密钥，无需迁移。",
    "migration_failed": "迁移失败，新存储未建立，旧存储未改动。",
    "migration_refused": "迁移被拒绝。",
    "no_checkpoint": "源存储没有签名检查点，无法核验。",
    "no_signing_key": "找不到源存储的签名密钥。",
    "same_signing_key": "新存储不得沿用旧存储的签名密钥。",
    "source_does_not_verify": "源存储核验不通过，不予迁移。",
    "db_unavailable": "无法连接数据库。",
    "store_not_empty": "该存储已有案件；演示数据只写入新的或空的存储。",
    "bad_input": "输入文件无效。",
    "port_in_use": "端口已被其他进程占用；请停止该进程或用 --port 另选端口。",
    "bind_failed": "无法在该地址和端口上监听。",
    "parked_event_not_found": "找不到该暂停事件。",
    # The registers (casetrail.registers) and what events name in them.
    "register_entry_not_found": "找不到该名册条目。",
    "register_entry_exists": "该名册条目已存在。",
    "register_entry_retired": "该名册条目已注销，不能再被引用或修改。",
    "register_entry_outside_unit": "所引用的名册条目不属于本案所在单位的上下级。",
    "staff_post_mismatch": "所引用的社区矫正工作人员的岗位与其在矫正小组中的职责不符。",
    "unknown_base": "过渡性安置基地未登记：请引用已登记且在用的基地。",
    "unknown_mediation_committee": "人民调解委员会未登记：请引用已登记且在用的调委会。",
    "unknown_mediator": "人民调解员未登记：请引用已登记且在用的调解员。",
    "unknown_correction_staff": "社区矫正工作人员未登记：请引用已登记且在用的工作人员。",
    # The backups, personal data, transfers and the metrics' scrape (added with them).
    "backup_failed": "备份失败：未能取得存储的一致副本。",
    "target_not_empty": "恢复的目标不是空的：请指定一个新的数据目录（或新的 schema）。",
    "case_open": "此人仍有未结案件，不能删除其个人信息。",
    "within_retention": "仍在保存期限内，不能删除其个人信息。",
    "person_not_found": "找不到此人的记录。",
    "no_person_keys": "此存储未启用个人密钥，无法按人删除个人信息。",
    "role_cannot_read": "您的角色不能查阅案件。",
    "transfer_required": "案件移交须由接收单位确认：请提出移交（TransferProposed），待对方接受。",
    "transfer_pending": "此案件已有待确认的移交。",
    "no_pending_transfer": "此案件没有待确认的移交。",
    "transfer_unit_mismatch": "只有移交指定的接收单位（或其上级）可以接受或拒绝。",
    "transfer_up_the_chain": "不能移交给本单位或其上级单位。",
    "transfer_accepted_by_proposer": "提出移交的人不能自己接受移交。",
    "unauthenticated": "抓取指标需要指标令牌（Authorization: Bearer）。",
    # Sealing of minors' records (犯罪记录封存, domain/sealing.py).
    "sealed": "该记录已依法封存（犯罪记录封存）：只有经审计人员申请、主管人员批准的查询期间内，申请人和批准人才能查阅。",
    "not_sealed": "该记录未被封存，无需申请查询。",
    "approval_by_same_person": "查询封存记录须由申请人以外的另一人批准。",
    "opening_expired": "查询期限已过（或申请已失效），记录已重新封存；如需查阅请重新申请。",
    "opening_pending": "已有一项查询封存记录的申请等待批准。",
    "opening_already_open": "该封存记录正处于查询期间。",
    "no_opening_request": "没有等待批准的查询封存记录申请。",
    "legal_ground_mismatch": "批准的法律依据须与申请的法律依据一致。",
    "not_open": "该封存记录当前不在查询期间。",
    "recorded_by_the_case": "此事件由系统依法自动记录，不能手动记录。",
}

CHINESE = "zh"


def language_from_env(environ: Mapping[str, str] | None = None) -> str:
    """`zh` when `CASETRAIL_LANG` (or else `LC_ALL`, `LC_MESSAGES`, `LANG`) names Chinese."""
    env = os.environ if environ is None else environ
    for name in ("CASETRAIL_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return CHINESE if value.lower().startswith("zh") else "en"
    return "en"


def localized(code: str, message: str, language: str) -> str:
    """The message for `code` in `language`; the English one when there is none."""
    if language == CHINESE:
        return MESSAGES_ZH.get(code, message)
    return message
