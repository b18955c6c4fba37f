"""The console's pages. Each view asks what the API's views ask — `ct.reads`,
`ReadModels.cases_for/indicators_for`, the inbox query, `ct.audit` — with the signed-in
user's actor, so roles, jurisdiction, minors' rules and the read-access log are the same."""

from __future__ import annotations

import hmac
import json
import secrets
from datetime import date, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from casetrail.directory import BadToken, User
from domain.clock import CST
from domain.errors import CasetrailError, InvalidData, NotPermitted
from domain.roles import AUDITOR, QUERY_ROLES
from projections.inbox_query import INBOX_ROLES, inbox_for
from web.console.charts import bar_chart
from web.console.sessions import Sessions
from web.context import casetrail
from web.queries import read_models
from web.schemas import canonical_case_id

bp = Blueprint(
    "console", __name__, url_prefix="/console", template_folder="templates", static_folder="static"
)
root = Blueprint("console_root", __name__)

SESSIONS = "casetrail.console_sessions"
KINDS = {"dispute": "矛盾纠纷调解", "resettlement": "安置帮教", "correction": "社区矫正"}
# The figure each kind's charts compare: how many cases came in.
HEADLINE = {"dispute": "registered", "resettlement": "received", "correction": "received"}
ROLE_NAMES = {"caseworker": "工作人员", "supervisor": "主管", "auditor": "审计", "admin": "管理员"}
# The indicators' names on the page (the API's keys stay beside them).
NAMES = {
    "registered": "登记数",
    "concluded": "办结数",
    "success_rate": "调解成功率",
    "on_time_rate": "按期办结率",
    "overdue_open": "逾期未结",
    "returns": "退回数",
    "referrals_to_litigation": "转诉讼",
    "collective": "群体性纠纷",
    "by_category": "按类别",
    "follow_up_rate": "回访率",
    "follow_up_visits": "回访次数",
    "satisfaction_rate": "回访满意率",
    "satisfaction_mean": "平均满意度（1–5）",
    "performance_rate": "协议履行率",
    "judicial_confirmations": "申请司法确认",
    "judicial_confirmation_rate": "司法确认申请率",
    "early_warnings": "预警次数（按风险）",
    "disputes_warned": "预警纠纷数（按风险）",
    "criminal_risk_disputes": "民转刑风险预警纠纷",
    "criminal_turned": "民转刑案件（纠纷转为刑事案件）",
    "criminal_turned_major": "民转刑重大刑事案件",
    "received": "接收数",
}
PUBLIC = frozenset({"console.sign_in", "console.static"})
PER_PAGE = 20
TREND_MONTHS = 12


def sessions() -> Sessions:
    found: Sessions = current_app.extensions[SESSIONS]
    return found


def user() -> User:
    signed = g.get("console")
    assert signed is not None
    return signed.user  # type: ignore[no-any-return]


@bp.before_request
def signed_in() -> Response | None:
    g.console = sessions().current(session.get("sid"))
    if request.method == "POST":
        expected = g.console.csrf if g.console is not None else session.get("csrf")
        given = request.form.get("csrf", "")
        if not expected or not hmac.compare_digest(str(expected), given):
            abort(400, "表单已过期或来源不明（CSRF），请刷新页面后再试。")
    if g.console is None and request.endpoint not in PUBLIC:
        return redirect(url_for("console.sign_in", next=request.full_path))
    return None


@bp.app_context_processor
def page_globals() -> dict[str, Any]:
    signed = g.get("console")
    if signed is None and request.blueprint == "console":
        session.setdefault("csrf", secrets.token_urlsafe(24))
    return {
        "signed": signed,
        "csrf": signed.csrf if signed is not None else session.get("csrf", ""),
        "role_names": ROLE_NAMES,
        "kinds": KINDS,
        "unit_name": unit_name,
    }


def unit_name(code: str | None) -> str:
    if not code:
        return ""
    unit = casetrail().directory.get_unit(code)
    return f"{unit.name}（{code}）" if unit is not None else code


@bp.errorhandler(CasetrailError)
def refused(error: CasetrailError) -> tuple[str, int]:
    return render_template("error.html", status=error.status, message=error.message), error.status


@bp.errorhandler(400)
@bp.errorhandler(404)
def http_error(error: Any) -> tuple[str, int]:
    status = int(getattr(error, "code", 400) or 400)
    return render_template("error.html", status=status, message=error.description), status


# --- sign-in -----------------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    message = None
    if request.method == "POST":
        token = request.form.get("token", "").strip()
        try:
            if not token or len(token) > 200:
                raise BadToken("令牌无效。")
            sid, _ = sessions().sign_in(token)
        except BadToken:
            message = "令牌无效、已停用或已过期。"
        else:
            session.clear()
            session["sid"] = sid
            session.permanent = True
            target = request.args.get("next", "")
            # Only a path of the console: never a redirect to another host.
            if not target.startswith("/console/") or target.startswith("//"):
                target = url_for("console.overview")
            return redirect(target)
    status = 401 if message else 200
    return render_template("sign_in.html", message=message), status


@bp.post("/sign-out")
def sign_out() -> Response:
    sessions().sign_out(session.get("sid"))
    session.clear()
    return redirect(url_for("console.sign_in"))


# --- overview ----------------------------------------------------------------------------


def _date(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidData(f"「{name}」不是日期（YYYY-MM-DD）。") from None


@bp.app_template_filter("one_line_json")
def one_line_json(value: Any) -> Markup:
    """An event's data on one line, escaped for HTML: `tojson(indent=…)` runs the pure-
    Python encoder, about half the time of a 1,000-event case page (bench.console)."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return escape(text)


def _shown(value: Any, name: str = "") -> str:
    if isinstance(value, dict) and "numerator" in value and name.endswith("_mean"):
        mean = value.get("value")
        shown = "—" if mean is None else f"{mean:.2f}"
        return f"{shown}（{value['numerator']}/{value['denominator']}）"
    if isinstance(value, dict) and "numerator" in value:
        rate = value.get("value")
        shown = "—" if rate is None else f"{rate:.1%}" if rate <= 1 else f"{rate}"
        return f"{shown}（{value['numerator']}/{value['denominator']}）"
    return str(value)


def figures(result: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """The indicators as (name, shown, breakdown) rows."""
    rows: list[tuple[str, str, dict[str, Any] | None]] = []
    for name, value in result.items():
        if name in ("kind", "unit", "from", "to", "as_of"):
            continue
        if isinstance(value, dict) and "numerator" not in value:
            rows.append((_named(name), "", {str(k): v for k, v in value.items()}))
        else:
            rows.append((_named(name), _shown(value, name), None))
    return rows


def _named(name: str) -> str:
    return f"{NAMES[name]}（{name}）" if name in NAMES else name


def _number(value: Any) -> float:
    if isinstance(value, dict):
        value = value.get("value")
    return float(value) if isinstance(value, (int, float)) else 0.0


def _months(end: date) -> list[tuple[date, date]]:
    months = []
    first = end.replace(day=1)
    for _ in range(TREND_MONTHS):
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        months.append((first, last))
        first = (first - timedelta(days=1)).replace(day=1)
    return list(reversed(months))


@bp.get("/")
def overview() -> str:
    me = user()
    if me.role not in QUERY_ROLES:
        raise NotPermitted("此角色不能查看指标。", code="role_not_permitted")
    kind = request.args.get("kind", "dispute")
    if kind not in KINDS:
        raise InvalidData("没有这种案件类别。")
    unit = request.args.get("unit") or me.unit
    from_, to = _date("from"), _date("to")
    models = read_models()
    result = models.indicators_for(me.actor, kind=kind, unit=unit, from_=from_, to=to)
    headline = HEADLINE[kind]
    children = [u for u in casetrail().directory.units() if u.parent == unit]
    bars = []
    for child in children:
        figures_of = models.indicators_for(me.actor, kind=kind, unit=child.code, from_=from_, to=to)
        value = _number(figures_of.get(headline))
        period = {k: v.isoformat() for k, v in (("from", from_), ("to", to)) if v is not None}
        link = url_for("console.overview", kind=kind, unit=child.code, **period)  # type: ignore[arg-type]
        bars.append((child.name, value, f"{value:.0f}", link))
    comparison = bar_chart(f"下级单位比较：{_named(headline)}", bars)
    end = to or models.today()
    trend_items = []
    for first, last in _months(end):
        month = models.indicators_for(me.actor, kind=kind, unit=unit, from_=first, to=last)
        value = _number(month.get(headline))
        trend_items.append((first.strftime("%y年%m月"), value, f"{value:.0f}", None))
    trend = bar_chart(f"按月趋势：{_named(headline)}", trend_items, with_line=True)
    chain = casetrail().directory.chain(unit)
    return render_template(
        "overview.html",
        title="概览",
        kind=kind,
        unit=unit,
        chain=list(reversed(chain)),
        from_=from_,
        to=to,
        result=result,
        rows=figures(result),
        comparison=comparison,
        trend=trend,
    )


# --- the inbox ---------------------------------------------------------------------------


@bp.get("/inbox")
def inbox() -> str:
    me = user()
    state = request.args.get("state") or None
    if state not in (None, "due_soon", "overdue"):
        raise InvalidData("「state」只能是 due_soon 或 overdue。")
    page = _page()
    models = read_models()
    if me.role in INBOX_ROLES:
        result = inbox_for(models, me.actor, state=state, page=page, per_page=PER_PAGE)
        overdue_cases = None
    elif me.role == AUDITOR:
        # An auditor has no inbox: the overdue cases of their subtree, from the case list.
        result = None
        overdue_cases = models.cases_for(me.actor, overdue=True, page=page, per_page=PER_PAGE)
    else:
        raise NotPermitted("此角色没有待办事项。", code="role_not_permitted")
    return render_template(
        "inbox.html",
        title="待办／逾期",
        state=state,
        page=page,
        result=result,
        overdue_cases=overdue_cases,
        per_page=PER_PAGE,
    )


def _page() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 100000:
        raise InvalidData("「page」须为正整数。")
    return int(raw)


# --- a case ------------------------------------------------------------------------------


@bp.get("/cases/<string:case_id>")
def case(case_id: str) -> str:
    me = user()
    case_id = _case_id(case_id)
    reads = casetrail().reads
    raw_version = request.args.get("version", "")
    version = int(raw_version) if raw_version.isdigit() else None
    state = reads.case_state(me.actor, case_id, as_of_version=version)
    events = reads.history(me.actor, case_id)
    report = access = None
    if me.role == AUDITOR:
        report = casetrail().audit.verify(case_id).as_dict()
        access = reads.access_log(me.actor, case=case_id)
    return render_template(
        "case.html",
        title=f"案件 {case_id[:8]}",
        case_id=case_id,
        state=state,
        version=version,
        events=events,
        report=report,
        access=access,
        is_auditor=me.role == AUDITOR,
    )


@bp.get("/cases/<string:case_id>/export")
def export(case_id: str) -> Response:
    """The offline-verifiable export (`casetrail audit export`), for auditors."""
    me = user()
    if me.role != AUDITOR:
        raise NotPermitted("只有审计人员可以下載證據包。", code="auditors_only")
    case_id = _case_id(case_id)
    casetrail().reads.case_state(me.actor, case_id)  # jurisdiction, recorded
    text = casetrail().audit.export_case(case_id, me.actor)
    response = make_response(text)
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="case-{case_id}.json"'
    return response


def _case_id(value: str) -> str:
    canonical = canonical_case_id(value)
    if len(canonical) != 36:
        abort(404, "没有这个案件。")
    return canonical


# --- audit -------------------------------------------------------------------------------


@bp.get("/audit")
def audit() -> str:
    me = user()
    if me.role != AUDITOR:
        raise NotPermitted("只有审计人员可以查看审计页。", code="auditors_only")
    ct = casetrail()
    report = None
    what = request.args.get("verify")
    target = request.args.get("case", "").strip() or None
    if what == "store":
        report = ct.audit.verify(None).as_dict()
    elif what == "case":
        if target is None:
            raise InvalidData("请填写要核验的案件编号。")
        report = ct.audit.verify(_case_id(target)).as_dict()
    filters: dict[str, Any] = {
        "case": request.args.get("log_case", "").strip() or None,
        "user": request.args.get("log_user", "").strip() or None,
        "from_": _moment("log_from"),
        "to": _moment("log_to", end_of_day=True),
    }
    page = _page()
    log = ct.reads.access_log(me.actor, **filters)
    log.reverse()  # newest first
    return render_template(
        "audit.html",
        title="审计",
        report=report,
        what=what,
        target=target,
        checkpoints=list(reversed(ct.audit.checkpoints()))[:20],
        log=log[(page - 1) * PER_PAGE : page * PER_PAGE],
        log_total=len(log),
        page=page,
        per_page=PER_PAGE,
        filters=request.args,
        public_key=ct.audit.public_key,
    )


def _moment(name: str, *, end_of_day: bool = False) -> datetime | None:
    day = _date(name)
    if day is None:
        return None
    moment = datetime.combine(day, datetime.min.time(), tzinfo=CST)
    return moment + timedelta(days=1, microseconds=-1) if end_of_day else moment
