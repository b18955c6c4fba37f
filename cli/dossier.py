"""The dossier (证据包) of one case: a PDF in Chinese a judge, an inspector or a party's
lawyer reads — the case's state, its whole timeline with actors and units, who read it,
the signed checkpoint that covers it (with whatever cosignatures and timestamps the export
carries), the software's version — with the machine-verifiable export itself embedded as
a file attachment, and how to check it with `casetrail-verify` (`evidence.cli`).

The text uses reportlab's built-in CID font STSong-Light (no font file is shipped); the
attachment is the exact text of `casetrail audit export`, stored uncompressed with its
size and MD5 in the PDF, so that `evidence.pdf` takes it out byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime
from importlib import metadata
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFObject, PDFString
from reportlab.pdfbase.pdfdoc import format as pdf_format
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from casetrail.audit.trail import CLI_AUDITOR
from casetrail.bootstrap import Casetrail
from casetrail.events import event_dict
from domain.case import Actor, CaseEvent, to_json
from domain.clock import CST
from evidence.note import parse_checkpoint
from evidence.offline import EXPORT_FIELDS

FONT = "STSong-Light"
ATTACHMENT = "export.json"
KNOWN_EXPORT = EXPORT_FIELDS

BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=13, wordWrap="CJK")
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=10)
CODE = ParagraphStyle("code", parent=SMALL, fontName="Courier", wordWrap="CJK")
H1 = ParagraphStyle("h1", parent=BODY, fontSize=18, leading=26, spaceAfter=6)
H2 = ParagraphStyle("h2", parent=BODY, fontSize=12.5, leading=18, spaceBefore=10, spaceAfter=4)

ROLES = {"caseworker": "承办人", "supervisor": "主管", "auditor": "审计员", "admin": "管理员"}


def gather(ct: Casetrail, case_id: str, actor: Actor = CLI_AUDITOR) -> dict[str, Any]:
    """Everything the dossier shows, read once (the export is recorded as a read)."""
    export = ct.audit.export_case(case_id, actor)
    document = json.loads(export)
    case = ct.app.get_case(document["case"])
    events = [
        event_dict(event, case.kind, None)
        for event in ct.app.events.get(case.id)
        if isinstance(event, CaseEvent)
    ]
    return {
        "export": export,
        "document": document,
        "state": case.state(ct.clock.now()),
        "events": events,
        "access": every_access_record(ct, actor, document["case"]),
        "units": {unit.code: unit.name for unit in ct.directory.units()},
        "made_at": ct.clock.now(),
        "made_by": actor.user_id,
        "version": _version(),
    }


def _version() -> str:
    try:
        version = metadata.version("casetrail")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"casetrail {version} (Python {platform.python_version()})"


def _cst(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return str(value)
    return moment.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def _p(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(to_json(value), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(rows: list[list[Any]], widths: list[float], header: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 7.5),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)))
    table.setStyle(TableStyle(style))
    return table


def _unit(units: dict[str, str], code: Any) -> str:
    if not code:
        return "—"
    name = units.get(str(code))
    return f"{name}（{code}）" if name else str(code)


def story(data: dict[str, Any]) -> list[Any]:
    document, units = data["document"], data["units"]
    digest = hashlib.sha256(data["export"].encode("utf-8")).hexdigest()
    width = A4[0] - 36 * mm
    parts: list[Any] = [
        _p("案件证据包", H1),
        _table(
            [
                [_p("案件编号"), _p(document["case"])],
                [_p("案件类型"), _p(data["state"].get("kind", "—"))],
                [_p("生成时间（北京时间）"), _p(_cst(data["made_at"].isoformat()))],
                [_p("生成人"), _p(data["made_by"])],
                [_p("软件版本"), _p(data["version"])],
                [_p("附件"), _p(f"{ATTACHMENT}（机器可核验的导出文件，SHA-256 {digest}）")],
            ],
            [35 * mm, width - 35 * mm],
            header=False,
        ),
        _p(
            "本证据包由 casetrail 案件系统自动生成。案件的每一条记录都以哈希链相连，并收录于"
            "经数字签名的 Merkle 日志检查点；附件 export.json 载有全部记录、哈希与包含证明，"
            "可在不依赖本系统及其数据库的情况下独立核验（见第六部分）。",
            BODY,
        ),
        _p("一、案件当前状态", H2),
        _table(
            [[_p("字段"), _p("值")]]
            + [[_p(k), _p(_short(v), SMALL)] for k, v in sorted(data["state"].items())],
            [45 * mm, width - 45 * mm],
        ),
        _p(f"二、完整时间线（共 {len(document['events'])} 条记录）", H2),
    ]
    details = {event["version"]: event for event in data["events"]}
    rows: list[list[Any]] = [
        [
            _p(h, SMALL)
            for h in ("版本", "时间（北京时间）", "事件", "操作人 / 角色", "单位", "内容")
        ]
    ]
    for event in document["events"]:
        detail = details.get(event["version"], {})
        content = {k: v for k, v in (detail.get("data") or {}).items() if v not in (None, "", [])}
        for extra in ("reason", "note"):
            if detail.get(extra):
                content[extra] = detail[extra]
        rows.append(
            [  # plain strings where a cell needs no wrapping: far faster to lay out
                str(event["version"]),
                _cst(event["recorded_at"]).replace(" ", "\n"),
                _short(event["type"], 22),
                f"{_short(event['actor'], 18)}\n{ROLES.get(event['actor_role'], event['actor_role'])}",
                _unit(units, event["actor_unit"]).replace("（", "\n（"),
                _p(_short(content, 300), SMALL),
            ]
        )
    parts.append(_table(rows, [10 * mm, 26 * mm, 28 * mm, 28 * mm, 30 * mm, width - 122 * mm]))
    access = data["access"]
    parts.append(_p(f"三、查阅记录（共 {len(access)} 条）", H2))
    if access:
        parts.append(
            _table(
                [
                    [
                        _p(h, SMALL)
                        for h in ("时间（北京时间）", "查阅人", "角色", "单位", "途径", "结果")
                    ]
                ]
                + [
                    [
                        _p(_cst(a["at"]), SMALL),
                        _p(a["user"], SMALL),
                        _p(ROLES.get(a["role"], a["role"]), SMALL),
                        _p(_unit(units, a["unit"]), SMALL),
                        _p(a["endpoint"], SMALL),
                        _p("准许" if a["granted"] else f"拒绝（{a.get('refusal') or ''}）", SMALL),
                    ]
                    for a in access
                ],
                [30 * mm, 34 * mm, 16 * mm, 36 * mm, 34 * mm, width - 150 * mm],
            )
        )
    else:
        parts.append(_p("无查阅记录。"))
    parts += _checkpoint(document, width)
    parts += _instructions(document)
    return parts


def _checkpoint(document: dict[str, Any], width: float) -> list[Any]:
    note = str(document["checkpoint"])
    body, _, signatures = note.rpartition("\n\n")
    parts: list[Any] = [_p("四、签名检查点", H2)]
    try:
        checkpoint = parse_checkpoint(body + "\n")
        parts.append(
            _table(
                [
                    [_p("日志"), _p(checkpoint.origin)],
                    [_p("日志大小"), _p(f"{checkpoint.size} 条记录")],
                    [_p("根哈希"), _p(checkpoint.root.hex(), CODE)],
                    [_p("签名时间（北京时间）"), _p(_cst(checkpoint.time.replace("Z", "+00:00")))],
                ],
                [40 * mm, width - 40 * mm],
                header=False,
            )
        )
    except Exception:  # shown as it is; the verifier says what is wrong with it
        pass
    lines = [line for line in signatures.splitlines() if line.startswith("— ")]
    origin = body.split("\n", 1)[0]
    parts.append(_p(f"签名（共 {len(lines)} 个；日志本身的签名以外均为见证人副署）："))
    for line in lines:
        name = line[2:].split(" ", 1)[0]
        who = "日志签名" if name == origin else "见证人副署"
        parts.append(_p(f"{who}：{line}", CODE))
    parts.append(_p("签名检查点原文：", SMALL))
    parts.append(_p(note, CODE))
    extra = sorted(set(document) - KNOWN_EXPORT)
    if extra:
        parts.append(_p("附加证明（副署、可信时间戳等，原样列出，由核验程序检查）：", BODY))
        for key in extra:
            parts.append(_p(f"{key}：{_short(document[key], 1200)}", CODE))
    return parts


def _instructions(document: dict[str, Any]) -> list[Any]:
    return [
        _p("五、日志公钥", H2),
        _p(document["public_key"], CODE),
        _p(
            "请将此公钥与日志运营机构以其他途径公布的公钥比对；一致时核验结果方可证明记录出自该日志。"
        ),
        _p("六、如何核验", H2),
        _p(
            "1. 本 PDF 附有文件 export.json（在阅读器的“附件”栏中可见），即 casetrail audit export "
            "导出的原文，逐字节受哈希、Merkle 包含证明与检查点签名保护。\n"
            "2. 核验只需 Python 3.11 以上版本与 cryptography 软件包，无需安装 casetrail，无需数据库：\n"
            "　　casetrail-verify 证据包.pdf --public-key 公钥\n"
            "　或在未安装 casetrail 时（evidence 目录取自 casetrail 源代码）：\n"
            "　　PYTHONPATH=<含 evidence 目录的文件夹> python -m evidence.cli 证据包.pdf --public-key 公钥\n"
            "3. 核验程序从 PDF 中取出附件，重新计算每条记录的哈希链与包含证明，并用公钥核验检查点签名；"
            "输出 “verified” 且退出码为 0 即为通过，任何一个字节的改动都会被指出。\n"
            "4. 本 PDF 的文字部分供阅读；如与附件不一致，以通过核验的附件为准。"
        ),
    ]


class _Raw(PDFObject):
    """Bytes written into the PDF as they are (a hex string)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def format(self, document: Any) -> bytes:
        return self.raw


class _EmbeddedFile(PDFObject):
    """An embedded file stream, unfiltered, with its size and MD5 (ISO 32000 §7.11.4)."""

    __RefOnly__ = 1

    def __init__(self, content: bytes, subtype: str, modified: str) -> None:
        self.content, self.subtype, self.modified = content, subtype, modified

    def format(self, document: Any) -> bytes:
        content = document.encrypt.encode(self.content)
        dictionary = PDFDictionary(
            {
                "Type": PDFName("EmbeddedFile"),
                "Subtype": _Raw(b"/" + self.subtype.replace("/", "#2F").encode()),
                "Length": len(content),
                "Params": PDFDictionary(
                    {
                        "Size": len(self.content),
                        "CheckSum": _Raw(
                            b"<" + hashlib.md5(self.content).hexdigest().encode() + b">"
                        ),
                        "ModDate": PDFString(self.modified),
                    }
                ),
            }
        )
        return pdf_format(dictionary, document) + b"\nstream\n" + content + b"\nendstream"


def _attach(pdf: Any, name: str, content: bytes, description: str, modified: str) -> None:
    spec = PDFDictionary(
        {
            "Type": PDFName("Filespec"),
            "F": PDFString(name),
            "UF": PDFString(name),
            "Desc": PDFString(description),
            "AFRelationship": PDFName("Data"),
            "EF": PDFDictionary({"F": _EmbeddedFile(content, "application/json", modified)}),
        }
    )
    reference = pdf.Reference(spec)
    catalog = pdf.Catalog
    catalog.Names = PDFDictionary(
        {"EmbeddedFiles": PDFDictionary({"Names": PDFArray([PDFString(name), reference])})}
    )
    catalog.AF = PDFArray([reference])
    catalog.PageMode = PDFName("UseAttachments")


def render(data: dict[str, Any]) -> bytes:
    """The dossier's PDF."""
    if FONT not in pdfmetrics.getRegisteredFontNames():  # at first use, not on every command
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    out = BytesIO()
    case = data["document"]["case"]
    made = data["made_at"].strftime("D:%Y%m%d%H%M%SZ")

    def first_page(canvas: Any, doc: Any) -> None:
        _attach(
            canvas._doc,
            ATTACHMENT,
            data["export"].encode("utf-8"),
            "casetrail case export (machine-verifiable)",
            made,
        )
        footer(canvas, doc)

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.drawString(18 * mm, 10 * mm, f"案件 {case} 证据包，第 {doc.page} 页")
        canvas.drawRightString(
            A4[0] - 18 * mm, 10 * mm, "附件 export.json 可用 casetrail-verify 核验"
        )
        canvas.restoreState()

    template = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"案件证据包 {case}",
        author=data["made_by"],
        subject="casetrail case dossier",
        creator=data["version"],
    )
    template.build([*story(data), Spacer(1, 4 * mm)], onFirstPage=first_page, onLaterPages=footer)
    return out.getvalue()


def dossier(ct: Casetrail, case_id: str, actor: Actor = CLI_AUDITOR) -> bytes:
    return render(gather(ct, case_id, actor))


def every_access_record(ct: Casetrail, actor: Actor, case_id: str) -> list[dict[str, Any]]:
    """Every recorded read of the case, page after page (a dossier leaves none out)."""
    items, cursor = ct.audit.access.query(actor, case=case_id)
    while cursor is not None:
        more, cursor = ct.audit.access.query(actor, case=case_id, after=cursor)
        items.extend(more)
    return items
