// gridwatch command-center board: live cases with ticking clocks and lights, case actions, analysis.
// Buildless, no outside fetches, nothing inline (the hub's CSP allows scripts and styles from itself only).
// The session is an HttpOnly cookie the page never sees; live updates come from the SSE stream, read with
// fetch(); the page reconnects by itself with Last-Event-ID.
"use strict";

const I18N = {
  "zh-CN": {
    routed: "自动分拨", q_dispatch: "待派单", q_requests: "待审批", q_verify: "待核查", q_callback: "待回访", rq_extension: "延期申请",
    rq_suspension: "挂起申请", rq_supervision: "督办待回复", st_waiting: "未开始", st_skipped: "未经此环节", part: "协办",
    part_done: "已办结", part_signed: "已签收", part_waiting: "待签收", rating: "回访评价", rejections: "核查退回次数",
    dispatch_to: "派往", assist: "协办单位", part_sign: "协办签收", part_report: "协办办结", ask_suspension: "申请挂起",
    sus_asked: "挂起申请", sus_approve: "同意挂起", sus_refuse: "不同意挂起", tl_dispatch: "派单至 {to}",
    tl_reject: "核查不通过，退回办理", tl_callback: "回访：{rating}", tl_part_signed: "协办单位 {unit} 签收",
    tl_part_reported: "协办单位 {unit} 办结", tl_notified: "通知 {to}（{channel}）：{result} {error}",
    duty_line: "{unit} {shift}值班：{people} · 带班领导：{leader}", shift_day: "工作时间", shift_night: "夜间", shift_holiday: "节假日",
    filters: "筛选", open_after_login: "登录后打开案件 {id}",
    nr_delivered: "已送达", nr_failed: "发送失败", nr_stopped: "已取消（案件已处理）", tl_suspension_requested: "申请挂起：{reason}",
    tl_suspension_approved: "同意挂起", tl_suspension_refused: "不同意挂起", err_parts_pending: "协办单位尚未全部办结：{units}",
    err_needs_approval: "本单位承办的案件挂起须由上级审批，请申请挂起", err_not_dispatcher: "{unit} 不是派单单位",
    err_needs_rating: "回访需要选择评价",
    title: "网格指挥中心", tab_board: "案件看板", tab_analysis: "类案分析", offline: "未连接", live: "实时",
    logout: "退出", key_label: "访问密钥（查看或操作）", login: "登录", bad_key: "密钥无效",
    username: "用户名", password: "密码", bad_password: "用户名或密码错误，或账号已停用", too_many: "失败次数过多，请稍后再试",
    otp: "动态口令（或恢复码）", code_required: "请输入身份验证器显示的动态口令", sms_code_required: "短信验证码已发送到您登记的手机，请输入", wrong_code: "动态口令错误或已使用过",
    enrol_title: "绑定动态口令（双因素认证）", enrol_start: "生成二维码", enrol_confirm: "绑定", continue: "已保存，进入系统",
    enrol_why: "管理员账号须使用两种鉴别方式登录：用身份验证器（如微信小程序、Google/Microsoft Authenticator）扫描二维码，再输入显示的六位动态口令。",
    recovery_once: "恢复码只显示这一次，请抄下并妥善保管；每个恢复码只能使用一次。", enrol_secret: "无法扫码时手工输入密钥：{secret}",
    expired_title: "密码已过期，请修改", pw_old: "当前密码", pw_new: "新密码", pw_change: "修改密码", session_ended: "会话已结束，请重新登录",
    tl_assigned: "指派给 {name}", err_not_member: "{username} 不是 {unit} 的在岗人员",
    tl_extension_requested: "申请延期至 {until}（原限期 {deadline}）", tl_extension_approved: "同意延期至 {until}",
    send_back: "退回", tl_sent_back: "由 {from} 退回至 {to}：{reason}", err_too_late: "已超过签收时限，不能退回", err_no_parent: "{unit} 没有上级可退回",
    flag_supervised: "督", flag_supervised_title: "督办件", flag_repeat: "重", flag_repeat_title: "重复件",
    supervise: "督办", sv_until: "回复期限", sv_order: "督办要求", sv_reply_by: "须于", sv_reply: "回复督办",
    tl_supervised: "督办：{order}（{until} 前回复）", tl_supervision_replied: "回复督办", k_supervised: "督办", m_supervised: "督办",
    ext_until: "延期至", ask_extension: "申请延期", ext_asked: "延期申请", ext_approve: "同意延期", ext_refuse: "不同意延期",
    tl_extension_refused: "不同意延期", err_extensions_used: "已延期 {used} 次，达到上限", err_request_pending: "已有延期申请待审批",
    err_not_later: "新限期须晚于当前限期 {deadline}", err_not_dispatcher: "须由上级派单单位审批", err_decided: "该申请已审批",
    f_unit: "单位", f_category: "类别", f_light: "亮灯", f_status: "状态", all: "全部", not_closed: "未办结",
    c_light: "亮灯", c_id: "案件", c_category: "类别", c_severity: "级别", c_grid: "网格", c_owner: "责任单位",
    c_status: "状态", c_elapsed: "已挂单", c_left: "剩余", c_cleared: "已消警", c_esc: "升级",
    red: "红灯", yellow: "黄灯", green: "绿灯", none: "—", overdue: "超时",
    open: "待签收", accepted: "办理中", resolved: "待核查", closed: "已结案", on_hold: "挂起", reported: "待派单", verified: "待回访",
    grid: "网格", community: "社区", street: "街道", district: "区",
    info: "提示", minor: "一般", major: "重要", critical: "紧急",
    accept: "签收", resolve: "办结", hold: "挂起", resume: "恢复", transfer: "转派", comment: "备注", close: "核查通过",
    note: "说明", reason: "原因", to_unit: "转派至", stamps: "时间戳", timeline: "处置过程", evidence: "证据",
    alerts: "告警数值", opened_at: "立案", accepted_at: "签收", resolved_at: "办结", closed_at: "结案", dispatched_at: "派单", verified_at: "核查通过",
    stage_started_at: "本阶段开始", first_seen: "首次发生（设备时间）", last_seen: "最近发生", first_received: "首次接收",
    cleared_at: "现场消警", shown: "显示", of: "共", a_category: "按类别", a_grid: "按网格", a_hour: "按时段（时）",
    a_day: "按日趋势", a_repeats: "重复发生的地点与设备", r_where: "地点/设备", r_cases: "案件数",
    needs_note: "请填写说明", not_allowed: "不允许的操作",
    opened: "立案", merged: "合并告警", light: "亮灯", escalated: "升级", backup_notified: "通知AB岗", reminder: "催办",
    condition_cleared: "现场消警", severity_raised: "级别提升", condition_returned: "告警复现",
    a_period: "时段", d7: "近7天", d30: "近30天", d90: "近90天", a_total: "案件总数",
    a_ranking: "考核排名", k_rank: "排名", k_unit: "单位", k_dispatched: "派单数", k_accept_pct: "按时签收率", k_resolve_pct: "按时办结率",
    k_mean_accept: "平均签收用时", k_mean_resolve: "平均办理用时", k_extended: "延期", k_overdue: "超时", k_reopened: "重新办理", k_satisfied: "满意率", k_sent_back: "退回", m_sent_back: "退回", m_unsatisfied: "不满意",
    m_dispatched: "派单", m_accepted_late: "超时签收", m_resolved_late: "超时办结", m_extended: "延期", m_overdue: "超时", m_reopened: "重新办理",
    c_where: "设备/地点", c_msg: "内容", wall: "大屏", wall_exit: "退出大屏", mute: "静音", unmute: "取消静音",
    sound_gate: "点击启用声音报警", reconnecting: "重连中", lost: "连接中断", overdue_today: "今日超时",
    opened_today: "今日立案", closed_today: "今日办结", f_q: "搜索（编号、设备、地点、内容）", f_since: "自", f_until: "至",
    f_mine: "我的案件", export: "导出", bulk_accept: "批量签收", bulk_done: "已签收", bulk_refused: "未签收",
    select: "选择", report: "一键上报", r_grid: "网格", r_category: "类别", r_tier: "等级", r_title: "情况描述",
    r_place: "地点（地址或地标）", r_photo: "现场照片", r_submit: "上报", r_locate: "使用当前位置", photo: "照片",
    add_photo: "拍照/上传照片", photos: "现场照片", deadline: "限期", stage_clock: "本阶段计时", since_report: "自上报",
    system: "系统", items: "件", more: "加载更多", loading: "加载中",
    err_wrong_state: "案件当前为「{status}」，不能{action}（可{action}的状态：{allowed}）",
    err_needs_note: "{action}需要填写说明", err_needs_unit: "{action}需要选择单位",
    err_not_a_grid: "所选网格不在组织树中", err_outside_scope: "{target} 不在 {unit} 的管辖范围内",
    err_held_elsewhere: "案件由 {owner} 承办，不在 {unit} 的管辖范围内",
    err_same_person: "办结人不能核查结案本人办结的案件，须由他人核查", err_not_backup: "只有收到AB岗通知的网格可代为签收",
    tl_accept_backup: "AB岗 {to} 代 {from} 签收受理", tl_reopened: "告警复现，案件重新办理（第{count}次）",
    tl_repeat: "重复件，同一地点同类案件 {repeat_of} 已办结", c_backup: "AB岗", c_repeat_of: "重复件，前案", c_reopened: "重新办理次数",
    err_transfer_outside: "{unit} 只能在本辖区内转派，不能转派至 {target}", err_not_found: "案件不存在或不可见",
    err_photo_type: "照片须为 JPEG、PNG 或 WebP 格式", err_photo_size: "照片不能超过 {limit} 字节",
    tl_opened: "立案，责任单位 {owner}", tl_opened_manual: "手工上报立案（{tier}）", tl_merged: "合并告警（设备时间 {observed_at}）",
    tl_light: "{stage}阶段转为{light}", tl_escalated: "超时未{stage}，由 {from} 升级至 {to}", tl_escalated_plain: "由 {from} 升级至 {to}",
    tl_backup_notified: "通知AB岗 {backup}", tl_reminder: "催办 {to}", tl_condition_cleared: "现场告警已消除",
    tl_condition_returned: "现场告警复现", tl_severity_raised: "级别由{from}提升为{to}", tl_warning_raised: "预警由{from}升至{to}", tl_warning_lowered: "预警由{from}降至{to}{applied}", tl_warning_kept: "（案件保持原级别）", tl_transfer: "由 {from} 转派至 {to}",
    tl_photo: "上传现场照片", tl_maintenance: "（检修窗口结束后立案）",
    clip: "报警录像", tl_clip: "附报警录像", look: "视频复核", tl_look_asked: "视频复核：调用摄像机 {camera}{at_preset}{for_sensor}", at_preset: " 预置位 {preset}", for_sensor: "（{sensor} 联动）",
    tl_look_snapshot: "复核画面已附：{camera}{at_preset}", tl_look_failed: "未取得复核画面：{camera}，{reason}",
  },
  en: {
    routed: "routed", q_dispatch: "To dispatch", q_requests: "To decide", q_verify: "To verify", q_callback: "To call back",
    rq_extension: "extension", rq_suspension: "suspension", rq_supervision: "supervision to answer", st_waiting: "to come",
    st_skipped: "not needed", part: "Assisting", part_done: "done", part_signed: "signed for", part_waiting: "to sign for",
    rating: "Callback rating", rejections: "Failed verifications", dispatch_to: "Dispatch to", assist: "Assisting units",
    part_sign: "Sign for our part", part_report: "Report our part", ask_suspension: "Ask to suspend",
    sus_asked: "Suspension asked", sus_approve: "Approve suspension", sus_refuse: "Refuse suspension",
    tl_dispatch: "dispatched to {to}", tl_reject: "verification failed, back to handling",
    tl_callback: "callback: {rating}", tl_part_signed: "assisting unit {unit} signed for its part",
    tl_part_reported: "assisting unit {unit} reported its part", tl_notified: "notice to {to} ({channel}): {result} {error}",
    duty_line: "{unit} on duty ({shift}): {people} · leader: {leader}", shift_day: "working hours", shift_night: "night", shift_holiday: "holiday",
    filters: "Filters", open_after_login: "sign in to open case {id}",
    nr_delivered: "delivered", nr_failed: "failed", nr_stopped: "stopped (the case moved on)", tl_suspension_requested: "suspension asked: {reason}",
    tl_suspension_approved: "suspension approved", tl_suspension_refused: "suspension refused",
    err_parts_pending: "the assisting units have not all reported: {units}",
    err_needs_approval: "a suspension of one's own case is approved by the level above: ask for it",
    err_not_dispatcher: "{unit} does not dispatch this case", err_needs_rating: "a callback needs a rating",
    title: "Grid command center", tab_board: "Cases", tab_analysis: "Analysis", offline: "offline", live: "live",
    logout: "Log out", key_label: "Access key (viewer or operator)", login: "Log in", bad_key: "Unknown key",
    username: "User name", password: "Password", bad_password: "Wrong name or password, or the account is disabled",
    too_many: "Too many failed attempts; try again later", tl_assigned: "assigned to {name}",
    otp: "One-time code (or recovery code)", code_required: "Enter the code your authenticator shows",
    sms_code_required: "A code was sent by SMS to your mobile on record: enter it", wrong_code: "Wrong or already used code",
    enrol_title: "Set up a second factor", enrol_start: "Show the QR code", enrol_confirm: "Confirm", continue: "Saved: continue",
    enrol_why: "Administrators sign in with two factors: scan the QR code with an authenticator app, then enter the 6-digit code it shows.",
    recovery_once: "These recovery codes are shown once: write them down; each works once.", enrol_secret: "Cannot scan? Type the secret: {secret}",
    expired_title: "Your password has expired: change it", pw_old: "Current password", pw_new: "New password", pw_change: "Change password", session_ended: "Session ended: sign in again",
    err_not_member: "{username} is not an active member of {unit}",
    tl_extension_requested: "extension asked until {until} (deadline was {deadline})", tl_extension_approved: "extension approved until {until}",
    send_back: "Send back", tl_sent_back: "sent back by {from} to {to}: {reason}", err_too_late: "the sign-for limit has passed",
    err_no_parent: "{unit} has no level above", flag_supervised: "S", flag_supervised_title: "under a supervision order", flag_repeat: "R", flag_repeat_title: "repeat case",
    supervise: "Supervise", sv_until: "Reply by", sv_order: "Supervision order", sv_reply_by: "reply by", sv_reply: "Reply to the order",
    tl_supervised: "supervision order: {order} (reply by {until})", tl_supervision_replied: "replied to the supervision order",
    k_supervised: "Supervised", m_supervised: "supervised",
    ext_until: "Extend until", ask_extension: "Ask for an extension", ext_asked: "Extension asked", ext_approve: "Approve extension",
    ext_refuse: "Refuse extension", tl_extension_refused: "extension refused", err_extensions_used: "{used} extensions granted: the most allowed",
    err_request_pending: "an extension request is waiting for a decision", err_not_later: "the new deadline must be after {deadline}",
    err_not_dispatcher: "the dispatching level decides", err_decided: "the request was already decided",
    f_unit: "Unit", f_category: "Category", f_light: "Light", f_status: "State", all: "all", not_closed: "not closed",
    c_light: "Light", c_id: "Case", c_category: "Category", c_severity: "Severity", c_grid: "Grid", c_owner: "Owner",
    c_status: "State", c_elapsed: "Pending", c_left: "Left", c_cleared: "Cleared", c_esc: "Esc.",
    red: "RED", yellow: "YELLOW", green: "GREEN", none: "—", overdue: "overdue",
    open: "open", accepted: "accepted", resolved: "resolved", closed: "closed", on_hold: "on hold", reported: "to dispatch", verified: "to call back",
    grid: "grid", community: "community", street: "street", district: "district",
    info: "info", minor: "minor", major: "major", critical: "critical",
    accept: "Accept", resolve: "Resolve", hold: "Hold", resume: "Resume", transfer: "Transfer", comment: "Comment",
    close: "Close", note: "Note", reason: "Reason", to_unit: "Transfer to", stamps: "Stamps", timeline: "Timeline",
    evidence: "Evidence", alerts: "Alert values", opened_at: "Opened", dispatched_at: "Dispatched", verified_at: "Verified", accepted_at: "Signed for",
    resolved_at: "Resolved", closed_at: "Closed", stage_started_at: "Stage started", first_seen: "First seen (device)",
    last_seen: "Last seen", first_received: "First received", cleared_at: "Condition cleared", shown: "shown",
    of: "of", a_category: "By category", a_grid: "By grid", a_hour: "By hour of day", a_day: "Trend by day",
    a_repeats: "Repeated places and devices", r_where: "Place / device", r_cases: "Cases",
    needs_note: "A note is needed", not_allowed: "Not allowed",
    opened: "opened", merged: "merged", light: "light", escalated: "escalated", backup_notified: "backup notified",
    reminder: "reminder", condition_cleared: "condition cleared", severity_raised: "severity raised",
    condition_returned: "condition returned", a_period: "Period", d7: "last 7 days", d30: "last 30 days",
    d90: "last 90 days", a_total: "cases",
    a_ranking: "Assessment ranking", k_rank: "Rank", k_unit: "Unit", k_dispatched: "Dispatched", k_accept_pct: "Accepted on time",
    k_resolve_pct: "Resolved on time", k_mean_accept: "Mean time to accept", k_mean_resolve: "Mean time to resolve", k_extended: "Extended",
    k_overdue: "Overdue", k_reopened: "Reopened", k_satisfied: "Satisfied", k_sent_back: "Sent back", m_sent_back: "sent back", m_unsatisfied: "unsatisfied",
    m_dispatched: "dispatched", m_accepted_late: "accepted late", m_resolved_late: "resolved late", m_extended: "extended",
    m_overdue: "overdue", m_reopened: "reopened",
    c_where: "Device / place", c_msg: "Message", wall: "Wall", wall_exit: "Leave wall", mute: "Mute", unmute: "Unmute",
    sound_gate: "Click to enable alarm sound", reconnecting: "reconnecting", lost: "connection lost",
    overdue_today: "Overdue today", opened_today: "Opened today", closed_today: "Closed today",
    f_q: "search (id, device, place, text)", f_since: "from", f_until: "to", f_mine: "My cases", export: "Export",
    bulk_accept: "Sign for selected", bulk_done: "signed for", bulk_refused: "refused", select: "select",
    report: "Report", r_grid: "Grid", r_category: "Category", r_tier: "Tier", r_title: "What is happening",
    r_place: "Place (address or landmark)", r_photo: "Photo", r_submit: "Report", r_locate: "Use my position",
    photo: "photo", add_photo: "Take / add photo", photos: "Photos", deadline: "Deadline", stage_clock: "Stage clock",
    since_report: "Since reported", system: "system", items: "", more: "Load more", loading: "loading",
    err_wrong_state: "the case is {status}: cannot {action} (allowed when {allowed})",
    err_needs_note: "{action} needs a note", err_needs_unit: "{action} needs a unit", err_not_a_grid: "the grid is not in the org tree",
    err_outside_scope: "{target} is outside {unit}", err_held_elsewhere: "the case is held by {owner}, outside {unit}",
    err_same_person: "the person who reported the result cannot also verify it", err_not_backup: "only the backup grid that was notified may sign for the case",
    tl_accept_backup: "backup grid {to} signed for it instead of {from}", tl_reopened: "condition returned: case reopened (time {count})",
    tl_repeat: "repeat case: {repeat_of} at this place was handled before", c_backup: "Backup grid", c_repeat_of: "Repeat of", c_reopened: "Reopened",
    err_transfer_outside: "{unit} may transfer only within its area, not to {target}", err_not_found: "no such case",
    err_photo_type: "a photo must be JPEG, PNG or WebP", err_photo_size: "a photo may be at most {limit} bytes",
    tl_opened: "opened, owner {owner}", tl_opened_manual: "reported by hand ({tier})", tl_merged: "alert merged (device time {observed_at})",
    tl_light: "{stage} clock turned {light}", tl_escalated: "not {stage} in time: escalated from {from} to {to}",
    tl_escalated_plain: "escalated from {from} to {to}", tl_backup_notified: "backup {backup} notified",
    tl_reminder: "reminder to {to}", tl_condition_cleared: "condition cleared on site", tl_condition_returned: "condition returned",
    tl_severity_raised: "severity raised from {from} to {to}", tl_warning_raised: "warning raised from {from} to {to}", tl_warning_lowered: "warning fell from {from} to {to}{applied}", tl_warning_kept: " (the case keeps its level)", tl_transfer: "transferred from {from} to {to}",
    tl_photo: "photo added", tl_maintenance: " (after a maintenance window)",
    clip: "Alarm recording", tl_clip: "alarm recording added", look: "Video check", tl_look_asked: "video check: camera {camera}{at_preset}{for_sensor}", at_preset: " at preset {preset}", for_sensor: " (linked to {sensor})",
    tl_look_snapshot: "video check picture added: {camera}{at_preset}", tl_look_failed: "no video check picture from {camera}: {reason}",
  },
};
const LIGHT_RANK = { red: 0, yellow: 1, green: 2 };
const SEVERITY_RANK = { critical: 0, major: 1, minor: 2, info: 3 };
const SYSTEM_ACTORS = new Set(["scheduler", "hub", "system"]);
const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const state = {
  lang: localStorage.getItem("gw-lang") || "zh-CN", csrf: "", me: null, // the session itself is an HttpOnly cookie
  labels: null, cases: new Map(), rows: new Map(), lastEventId: null, stream: null, loading: 0, held: [],
  filters: { unit: "", category: "", light: "", status: "", q: "", since: "", until: "", mine: false },
  detail: null, shown: null, lastUpdate: null, journal: [], selected: new Set(),
  wall: params.has("wall") || localStorage.getItem("gw-wall") === "1", muted: localStorage.getItem("gw-muted") === "1",
  soundReady: false, alarms: [], link: "off", lastByte: 0, lostAt: null, summary: null,
  openCase: params.get("case"), // a notice's link (/?case=ID): the case opens once signed in
};
const PHONE = window.matchMedia("(max-width: 600px)");
window.gridwatch = state; // for tests and curious operators: state.lastUpdate = {case_id, event_id, ms}, state.alarms

function t(key) { return (I18N[state.lang] || I18N.en)[key] ?? key; }
function fill(template, p = {}) { return template.replace(/\{(\w+)\}/g, (_, k) => (p[k] ?? "")); }
// Display names of codes (category, severity, status, stage, action, level, light, tier) from the hub's labels
function label(kind, code) {
  if (code === null || code === undefined || code === "") return "—";
  const n = state.labels?.[kind]?.[code];
  return n ? (n[state.lang] || n.en) : (kind === "light" || kind === "severity" || kind === "status" ? t(code) : code);
}

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  $("#lang").textContent = state.lang === "zh-CN" ? "English" : "中文";
  setLink(state.link);
  setWall(state.wall);
  if (state.me) { fillFilters(); renderAll(); if (state.detail) { state.shown = null; openDetail(state.detail); } }
}

// A refusal from the hub in the page's language: its reason code and parameters, else its own words.
function reason(body, status) {
  if (body && body.code && I18N[state.lang][`err_${body.code}`]) {
    const p = { ...(body.params || {}) };
    if (p.action) p.action = label("action", p.action);
    if (p.status) p.status = label("status", p.status);
    if (Array.isArray(p.allowed)) p.allowed = p.allowed.map((x) => label("status", x)).join("、");
    if (Array.isArray(p.units)) p.units = p.units.map(unitLabel).join("、");
    for (const k of ["owner", "unit", "target", "grid"]) if (p[k]) p[k] = unitName(p[k]);
    return fill(t(`err_${body.code}`), p);
  }
  if (status === 404) return t("err_not_found");
  const d = body?.detail;
  return typeof d === "string" ? d : JSON.stringify(d);
}

// The session rides in the HttpOnly cookie (no script can read it); changes carry the CSRF value besides.
async function api(path, opts = {}) {
  const headers = { ...(opts.body instanceof Blob ? {} : { "Content-Type": "application/json" }), ...(opts.headers || {}) };
  if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch(path, { ...opts, headers, credentials: "same-origin" });
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    const err = new Error(body ? reason(body, res.status) : res.statusText);
    err.status = res.status; err.body = body;
    throw err;
  }
  return res.headers.get("content-type")?.includes("json") ? res.json() : res;
}

// ---- time --------------------------------------------------------------------------------------
function fmtTime(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(state.lang, { timeZone: state.me?.tz || undefined, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(new Date(iso));
}
function fmtDur(s) {
  const neg = s < 0; s = Math.abs(Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const txt = `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
  return neg ? `-${txt}` : txt;
}
// The clock runs in the page: elapsed and remaining move from the values fetched, unless paused.
function clockNow(c) {
  const k = c.clock;
  if (!k) return null;
  const moved = k.paused ? 0 : (performance.now() - c._fetched) / 1000;
  return { elapsed: k.elapsed_s + moved, remaining: k.remaining_s - moved, light: k.light };
}
// A date input (YYYY-MM-DD) as the start of that day in the hub's time zone, for since/until
function dayStart(value) {
  if (!value) return null;
  const probe = new Date(`${value}T00:00:00Z`);
  const local = new Date(probe.toLocaleString("en-US", { timeZone: state.me?.tz || "UTC" }));
  return new Date(probe.getTime() - (local.getTime() - probe.getTime())).toISOString();
}

// ---- who is on duty (值班) for the unit in view ---------------------------------------------------
async function loadDuty() {
  const unit = state.filters.unit || state.me.unit;
  const el = $("#duty");
  if (!unit) { el.hidden = true; return; }
  let d;
  try { d = await api(`/api/v1/duty?unit=${encodeURIComponent(unit)}`); } catch { el.hidden = true; return; }
  const who = (p) => `${p.name}${p.contact.mobile ? ` ${p.contact.mobile}` : ""}`;
  el.textContent = fill(t("duty_line"), { unit: unitName(unit), shift: t(`shift_${d.shift}`),
    people: d.people.map(who).join("、") || "—", leader: d.leader ? who(d.leader) : "—" });
  el.hidden = false;
}

// ---- notices for administrators (a working-time calendar running out) ----------------------------
function showNotices(texts) {
  const ul = $("#notices");
  ul.replaceChildren(...texts.map((text) => { const li = document.createElement("li"); li.textContent = text; return li; }));
  ul.hidden = texts.length === 0;
}

// ---- login -------------------------------------------------------------------------------------
// Signed in (a session cookie is there): who am I; a session limited to enrolling a second factor or to
// changing an expired password shows only that; quiet=true on load, when there may be no session at all.
async function login(quiet = false) {
  try {
    state.me = await api("/api/v1/me");
    state.csrf = state.me.csrf || state.csrf;
    if (state.me.limited) { showSecure(state.me.limited); return false; }
    state.labels = await api("/api/v1/labels");
  } catch (e) {
    if (!quiet) $("#login-error").textContent = e.status === 401 || e.status === 403 ? t("bad_key") : e.message;
    return false;
  }
  $("#secure").hidden = true;
  $("#login").hidden = true; $("#board").hidden = false; $("#tabs").hidden = false; $("#logout").hidden = false;
  $("#who").textContent = `${state.me.person || state.me.name} · ${state.me.unit ? unitName(state.me.unit) : "*"}`;
  for (const el of document.querySelectorAll(".can-act")) el.hidden = !state.me.can_act;
  showNotices(state.me.notices || []);
  $("#tabs button[data-tab=notices-tab]").hidden = !["admin", "sysadmin"].includes(state.me.role);
  fillFilters();
  if (!["operator", "viewer", "admin"].includes(state.me.role)) return true; // the administrators (三权分立) read no cases
  const loaded = loadCases(); // the stream opens beside the first read (its events wait for it: loadCases)
  connect();
  await loaded;
  loadSummary();
  loadDuty();
  if (state.openCase) { // opened from a notice: straight to the case
    const id = state.openCase; state.openCase = null;
    history.replaceState(null, "", location.pathname);
    openDetail(id);
  }
  return true;
}

async function logout() {
  try { await fetch("/api/v1/logout", { method: "POST", headers: { "X-CSRF-Token": state.csrf } }); } catch (e) { /* gone anyway */ }
  location.reload();
}

// ---- a limited session: enrol the second factor (TOTP), or change an expired password ----------------
function showSecure(limited) {
  $("#login").hidden = true; $("#secure").hidden = false; $("#logout").hidden = false;
  $("#enrol").hidden = limited !== "two_factor"; $("#expired").hidden = limited !== "password";
}
async function enrolStart() {
  $("#secure-error").textContent = "";
  try {
    const e = await api("/api/v1/me/two-factor", { method: "POST" });
    $("#enrol-qr").src = e.qr; $("#enrol-qr").hidden = false;
    $("#enrol-secret").textContent = fill(t("enrol_secret"), { secret: e.secret });
    $("#enrol-code").focus();
  } catch (e) { $("#secure-error").textContent = e.message; }
}
async function enrolConfirm() {
  $("#secure-error").textContent = "";
  try {
    const r = await api("/api/v1/me/two-factor/confirm", { method: "POST", body: JSON.stringify({ code: $("#enrol-code").value.trim() }) });
    $("#recovery-codes").replaceChildren(...r.recovery_codes.map((c) => { const li = document.createElement("li"); li.textContent = c; return li; }));
    $("#enrol-done").hidden = false; $("#enrol-confirm").disabled = true;
  } catch (e) { $("#secure-error").textContent = e.body?.code === "wrong_code" ? t("wrong_code") : e.message; }
}
async function changeExpired(ev) {
  ev.preventDefault();
  $("#secure-error").textContent = "";
  try {
    await api("/api/v1/me/password", { method: "POST", body: JSON.stringify({ old: $("#pw-old").value, new: $("#pw-new").value }) });
    $("#pw-old").value = ""; $("#pw-new").value = "";
    login();
  } catch (e) { $("#secure-error").textContent = e.message; }
}

// ---- cases -------------------------------------------------------------------------------------
function query(extra = {}) {
  const f = state.filters, q = new URLSearchParams();
  const closed = f.status === "*" || f.status === "closed";
  if (f.status && f.status !== "*") q.set("status", f.status);
  else if (!closed) q.set("status", "reported,open,accepted,on_hold,resolved,verified");
  if (f.q) q.set("q", f.q);
  if (f.since) q.set("since", dayStart(f.since));
  if (f.until) { const d = new Date(`${f.until}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1); q.set("until", dayStart(d.toISOString().slice(0, 10))); }
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q;
}

// The board holds what the filters ask for, read page by page with the hub's cursor.
// The stream's events that arrive while the cases are read are held and applied, in order, on top of what was
// read: an event newer than the read is not lost, one older than it sets what the read already holds.
async function loadCases() {
  const now = performance.now(), got = [];
  state.loading += 1;
  try {
    let cursor = null;
    do {
      const q = query({ limit: "1000" });
      if (cursor) q.set("cursor", cursor);
      const data = await api(`/api/v1/cases?${q}`);
      got.push(...data.cases);
      cursor = data.next_cursor;
    } while (cursor && got.length < 20000);
    state.cases.clear();
    for (const c of got) { c._fetched = now; state.cases.set(c.id, c); }
    fillFilters(); renderAll();
  } finally {
    state.loading -= 1;
    if (!state.loading) for (const [ev, received] of state.held.splice(0)) applyEvent(ev, received);
  }
}

// An event updates its row at once from what the event carries; the full case (clock, stamps) follows
// from a coalesced refetch, at most a few at a time, so a burst of events never floods the hub.
function applyEvent(ev, received) {
  let c = state.cases.get(ev.case_id);
  const isNew = !c;
  if (!c) { c = { id: ev.case_id, clock: null, cleared_at: null, _fetched: performance.now() }; state.cases.set(ev.case_id, c); fillFilters(); }
  for (const k of ["status", "owner", "grid", "category", "severity", "escalations"]) if (ev[k] !== undefined) c[k] = ev[k];
  c._stale = true; // the clock's figures are from before this event until the case is read again
  if (ev.action === "light" && ev.detail?.light) { if (c.clock) c.clock.light = ev.detail.light; else c._light = ev.detail.light; }
  if (ev.action === "condition_cleared") c.cleared_at = ev.at;
  if (ev.action === "condition_returned") c.cleared_at = null;
  upsertRow(c);
  placeRow(c);
  if (isNew && c.severity === "critical") alarm(c.id, "critical");
  state.lastUpdate = { case_id: ev.case_id, event_id: ev.id, event: ev.event, ms: performance.now() - received };
  document.dispatchEvent(new CustomEvent("gw-row-updated", { detail: state.lastUpdate }));
  queueRefresh(ev.case_id);
  summarySoon();
}

const pending = new Set();
let inflight = 0;
function queueRefresh(id) { pending.add(id); pump(); }
function pump() {
  while (inflight < 4 && pending.size) {
    const id = pending.values().next().value;
    pending.delete(id);
    inflight++;
    refreshCase(id).finally(() => { inflight--; pump(); });
  }
}

async function refreshCase(id) {
  let c;
  try { c = await api(`/api/v1/cases/${encodeURIComponent(id)}`); } catch (e) { if (e.status === 404) { state.cases.delete(id); renderAll(); } return; }
  c._fetched = performance.now();
  state.cases.set(id, c);
  upsertRow(c);
  placeRow(c);
  if (state.detail === id) openDetail(id);
}

function grids() { return state.me.units.filter((u) => u.level === "grid"); }
function findUnit(id) { return state.me?.units.find((x) => x.id === id) || (state.me?.dispatch_to || []).find((x) => x.id === id); }
function unitName(id) { const u = findUnit(id); return u ? u.name : id; }
function unitLabel(id) {
  const u = findUnit(id);
  return u ? `${u.name} (${label("level", u.level)})` : id;
}

function subtree(unit) {
  const out = new Set([unit]);
  let grew = true;
  while (grew) { grew = false; for (const u of state.me.units) if (u.parent && out.has(u.parent) && !out.has(u.id)) { out.add(u.id); grew = true; } }
  return out;
}

function visible(c) {
  const f = state.filters;
  if (f.unit) { const s = subtree(f.unit); if (!s.has(c.owner) && !s.has(c.grid)) return false; }
  if (f.mine && state.me.unit && c.owner !== state.me.unit) return false;
  if (f.category && c.category !== f.category) return false;
  if (f.light && lightOf(c) !== f.light) return false;
  if (f.status === "" && c.status === "closed") return false;
  if (f.status && f.status !== "*" && c.status !== f.status) return false;
  return true;
}

function lightOf(c) { return c.clock?.light || c._light || "none"; }

// The order of the wall: light, then severity, then time left
function urgency(a, b) {
  const la = LIGHT_RANK[lightOf(a)] ?? 3, lb = LIGHT_RANK[lightOf(b)] ?? 3;
  if (la !== lb) return la - lb;
  const sa = SEVERITY_RANK[a.severity] ?? 4, sb = SEVERITY_RANK[b.severity] ?? 4;
  if (sa !== sb) return sa - sb;
  const ra = clockNow(a)?.remaining ?? Infinity, rb = clockNow(b)?.remaining ?? Infinity;
  return ra - rb;
}

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
// The id's last eight digits (its random part, enough to tell cases apart on a screen); the whole id on hover
function shortId(id) { const td = cell(id.slice(-8), "c-id"); td.title = id; return td; }
function where(c) {
  const p = c.place || {};
  return [c.device, p.name, p.address].filter(Boolean).join(" · ") || "—";
}

function upsertRow(c) {
  let tr = state.rows.get(c.id);
  if (!tr) {
    tr = document.createElement("tr"); tr.dataset.case = c.id;
    tr.addEventListener("click", (e) => { if (!e.target.closest(".c-sel")) openDetail(c.id); });
    state.rows.set(c.id, tr);
  }
  const light = lightOf(c);
  const before = tr.dataset.light;
  if (before !== light || tr.dataset.owner !== c.owner) { // what changed recently, newest last
    state.journal.push({ case_id: c.id, light, owner: c.owner, at: Date.now() / 1000 });
    if (state.journal.length > 1000) state.journal.shift();
  }
  if (light === "red" && before !== undefined && before !== "red") alarm(c.id, "red");
  tr.classList.remove("red", "yellow", "green", "none"); tr.classList.add(light);
  tr.dataset.light = light; tr.dataset.owner = c.owner; tr.dataset.status = c.status; tr.dataset.severity = c.severity || "";
  const badge = document.createElement("span");
  badge.className = `light ${light}`; badge.textContent = label("light", light === "none" ? null : light);
  const first = document.createElement("td"); first.className = "c-light"; first.append(badge);
  const sel = document.createElement("td"); sel.className = "c-sel";
  if (state.me?.can_act && c.status === "open") {
    const box = document.createElement("input"); box.type = "checkbox"; box.checked = state.selected.has(c.id); box.setAttribute("aria-label", t("select"));
    box.addEventListener("change", () => { if (box.checked) state.selected.add(c.id); else state.selected.delete(c.id); updateBulk(); });
    sel.append(box);
  }
  const category = cell(label("category", c.category), "c-category");
  for (const [on, key, cls] of [[c.supervisions, "flag_supervised", "sv"], [c.repeat_of, "flag_repeat", "rp"]]) {
    if (!on) continue; // 督办 and 重复件 are flagged on the row
    const f = document.createElement("span"); f.className = `flag ${cls}`; f.textContent = t(key); f.title = t(`${key}_title`);
    category.append(" ", f);
  }
  if (c.warning) category.append(" ", warningBadge(c.warning)); // 预警 level: its colour and Chinese name
  tr.replaceChildren(sel, first, shortId(c.id), category, cell(where(c), "c-where"),
    cell(c.title || "", "c-msg"), cell(label("severity", c.severity), "c-severity"), cell(c.grid ? unitName(c.grid) : "", "c-grid"),
    cell(unitLabel(c.owner), "c-owner"), cell(label("status", c.status), "c-status"),
    cell("", "num c-elapsed"), cell("", "num c-left"), cell(c.cleared_at ? "✓" : "", "c-cleared"), cell(String(c.escalations ?? 0), "num c-esc"));
  tickRow(c, tr);
  redAt(c);
}

function warningBadge(level) {
  const w = document.createElement("span");
  w.className = `warn ${level}`; w.dataset.warning = level; w.textContent = label("warning", level);
  return w;
}

// A timer set for the moment the running clock passes its limit: the row turns red then, to the moment,
// not at the next second's tick and not only when the hub's event arrives.
const redTimers = new Map();
function redAt(c) {
  clearTimeout(redTimers.get(c.id));
  redTimers.delete(c.id);
  const k = clockNow(c);
  if (!k || c.clock.paused || c.clock.light === "red" || k.remaining < 0 || c.status === "closed") return;
  redTimers.set(c.id, setTimeout(() => {
    redTimers.delete(c.id);
    const cur = state.cases.get(c.id);
    if (cur && state.rows.get(c.id)?.isConnected) tickRow(cur, state.rows.get(c.id));
  }, k.remaining * 1000 + 20));
}

function tickRow(c, tr) {
  const k = clockNow(c);
  const el = tr.querySelector(".c-elapsed"), left = tr.querySelector(".c-left");
  if (!k) { el.textContent = "—"; left.textContent = "—"; return; }
  el.textContent = fmtDur(k.elapsed);
  left.textContent = k.remaining < 0 ? `${t("overdue")} ${fmtDur(-k.remaining)}` : fmtDur(k.remaining);
  left.classList.toggle("overdue", k.remaining < 0);
  // the limit passed in the page's own clock: red now, before the hub's event arrives
  if (k.remaining < 0 && !c.clock.paused && !c._stale && c.clock.light !== "red") { c.clock.light = "red"; upsertRow(c); placeRow(c); }
}

// Put one row where it belongs without touching the others (an SSE event must not re-lay 2,000 rows).
function placeRow(c) {
  const tbody = $("#cases tbody"), tr = state.rows.get(c.id);
  if (!visible(c)) { tr.remove(); updateCounts(); return; }
  tr.remove();
  const rows = tbody.children;
  let lo = 0, hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (urgency(state.cases.get(rows[mid].dataset.case), c) <= 0) lo = mid + 1; else hi = mid;
  }
  tbody.insertBefore(tr, rows[lo] || null);
  updateCounts();
}

// The signed-in person's own open tasks: assigned to them, or waiting for their unit to sign for them
function mine(c) {
  if (!state.me || c.status === "closed") return false;
  return (state.me.person && c.assignee === state.me.name) || (!!state.me.unit && c.owner === state.me.unit && c.status === "open");
}

// On a phone the person's own tasks come first, each group in the wall's order
function order(a, b) {
  if (PHONE.matches) { const ma = mine(a), mb = mine(b); if (ma !== mb) return ma ? -1 : 1; }
  return urgency(a, b);
}

function renderAll() {
  const list = [...state.cases.values()].filter(visible).sort(order);
  for (const c of list) upsertRow(c);
  $("#cases tbody").replaceChildren(...list.map((c) => state.rows.get(c.id)));
  updateCounts();
  renderQueues();
}

function updateCounts() {
  $("#counts").textContent = `${t("shown")} ${$("#cases tbody").children.length} ${t("of")} ${state.cases.size}`;
  const n = { red: 0, yellow: 0, green: 0 };
  for (const c of state.cases.values()) if (c.status !== "closed" && visible(c) && n[lightOf(c)] !== undefined) n[lightOf(c)]++;
  for (const k of Object.keys(n)) $(`#n-${k}`).textContent = String(n[k]);
}

// Today's figures (opened, closed, overdue) come from the hub, at most every few seconds
let summaryTimer = null;
function summarySoon() { if (!summaryTimer) summaryTimer = setTimeout(() => { summaryTimer = null; loadSummary(); loadRequests(); }, 3000); }
async function loadSummary() {
  if (!state.requests) loadRequests();
  try {
    const s = await api(`/api/v1/cases/summary${state.filters.unit ? `?unit=${encodeURIComponent(state.filters.unit)}` : ""}`);
    state.summary = s;
    for (const k of ["overdue_today", "opened_today", "closed_today"]) $(`#n-${k}`).textContent = String(s[k]);
  } catch (_) { /* shown again at the next event */ }
}

function option(value, text, selected) { const o = document.createElement("option"); o.value = value; o.textContent = text; o.selected = selected; return o; }

function fillFilters() {
  const f = state.filters, me = state.me;
  const depth = (u) => { let d = 0, p = u.parent; while (p && me.units.some((x) => x.id === p)) { d++; p = me.units.find((x) => x.id === p).parent; } return d; };
  const ordered = [];
  const roots = me.units.filter((u) => !me.units.some((y) => y.id === u.parent));
  const visit = (u) => { ordered.push(u); for (const ch of me.units.filter((x) => x.parent === u.id)) visit(ch); };
  roots.forEach(visit);
  $("#f-unit").replaceChildren(option("", t("all"), !f.unit), ...ordered.map((u) => option(u.id, `${"\u3000".repeat(depth(u))}${u.name} (${label("level", u.level)})`, f.unit === u.id)));
  const cats = [...new Set([...state.cases.values()].map((c) => c.category).filter(Boolean))].sort();
  $("#f-category").replaceChildren(option("", t("all"), !f.category), ...cats.map((c) => option(c, label("category", c), f.category === c)));
  $("#f-light").replaceChildren(option("", t("all"), !f.light), ...["red", "yellow", "green"].map((l) => option(l, label("light", l), f.light === l)));
  $("#f-status").replaceChildren(option("", t("not_closed"), f.status === ""), option("*", t("all"), f.status === "*"),
    ...["reported", "open", "accepted", "on_hold", "resolved", "verified", "closed"].map((s) => option(s, label("status", s), f.status === s)));
}

// ---- the queues a command center works from: to dispatch, requests to decide or answer, to verify, to call back
const QUEUES = [["q_dispatch", "reported"], ["q_requests", null], ["q_verify", "resolved"], ["q_callback", "verified"]];
async function loadRequests() {
  try { state.requests = await api("/api/v1/requests"); } catch (_) { state.requests = []; }
  renderQueues();
}
function renderQueues() {
  const box = $("#queues");
  if (!box) return;
  const cases = [...state.cases.values()];
  const sig = JSON.stringify([state.lang, state.filters.status, $("#queue-list").hidden, QUEUES.map(([, st]) => st && cases.filter((c) => c.status === st).length),
    (state.requests || []).map((r) => [r.request, r.can_decide])]);
  if (sig === state.queueSig) return; // nothing changed: keep the nodes (and the operator's focus)
  state.queueSig = sig;
  const chips = QUEUES.map(([key, status]) => {
    const n = status ? cases.filter((c) => c.status === status).length : (state.requests || []).filter((r) => r.can_decide).length;
    const b = document.createElement("button"); b.type = "button"; b.dataset.queue = key; b.className = n ? "queue busy" : "queue";
    b.textContent = `${t(key)} ${n}`;
    b.classList.toggle("active", status ? state.filters.status === status : !$("#queue-list").hidden);
    b.addEventListener("click", () => {
      if (status) { state.filters.status = state.filters.status === status ? "" : status; $("#queue-list").hidden = true; fillFilters(); renderAll(); }
      else { $("#queue-list").hidden = !$("#queue-list").hidden; renderQueues(); }
    });
    return b;
  });
  box.replaceChildren(...chips);
  const list = $("#queue-list");
  list.replaceChildren(...(state.requests || []).filter((r) => r.can_decide).map((r) => {
    const li = document.createElement("li"); li.dataset.case = r.case.id; li.dataset.kind = r.kind;
    const until = r.until ? ` · ${fmtTime(r.until)}` : "";
    li.textContent = `${t(`rq_${r.kind}`)} · ${label("category", r.case.category)} · ${unitLabel(r.case.owner)} · ${r.reason}${until} · ${r.requested_by}`;
    li.addEventListener("click", () => openDetail(r.case.id));
    return li;
  }));
}

// ---- selection and bulk acknowledge -------------------------------------------------------------
function updateBulk() {
  const b = $("#bulk-accept");
  b.disabled = state.selected.size === 0;
  b.textContent = `${t("bulk_accept")}${state.selected.size ? ` (${state.selected.size})` : ""}`;
}
async function bulkAccept() {
  const ids = [...state.selected];
  if (!ids.length) return;
  try {
    const r = await api("/api/v1/cases/bulk/accept", { method: "POST", body: JSON.stringify({ ids }) });
    state.selected.clear();
    const refused = Object.entries(r.refused);
    $("#bulk-msg").textContent = `${t("bulk_done")} ${r.done.length}${refused.length ? ` · ${t("bulk_refused")} ${refused.length}: ${refused.map(([id, p]) => `${id.slice(-6)} ${reason(p)}`).join("；")}` : ""}`;
    for (const id of r.done) queueRefresh(id);
  } catch (e) { $("#bulk-msg").textContent = `${t("not_allowed")}: ${e.message}`; }
  updateBulk(); renderAll();
}

// ---- export --------------------------------------------------------------------------------------
async function exportCases(format) {
  const q = query({ format, lang: state.lang });
  if (state.filters.light) q.set("light", state.filters.light);
  if (state.filters.unit) q.set("unit", state.filters.unit);
  if (state.filters.category) q.set("category", state.filters.category);
  await download(`/api/v1/cases/export?${q}`, `cases.${format}`);
}

// a sheet from the API (the key goes in a header, so not a plain link), saved under the hub's file name
async function download(url, fallback) {
  const res = await api(url);
  const name = (res.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || fallback;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await res.blob()); a.download = name;
  document.body.append(a); a.click(); a.remove();
}

// ---- the stream, and the link indicator ----------------------------------------------------------
async function connect() {
  const ctrl = new AbortController();
  state.stream = ctrl;
  const headers = {};
  if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
  try {
    const res = await fetch("/api/v1/stream", { headers, signal: ctrl.signal, credentials: "same-origin" });
    if (res.status === 401 || res.status === 403) { // the key was withdrawn or the session ended: back to the login form
      state.stream = null;
      for (const sec of document.querySelectorAll("section[data-tab-section]")) sec.hidden = true;
      $("#tabs").hidden = true; $("#login").hidden = false;
      $("#login-error").textContent = t("session_ended");
      return;
    }
    if (!res.ok) throw new Error(`stream ${res.status}`);
    state.lastByte = performance.now();
    setLink("on");
    if (state.lastEventId === null) state.lastEventId = "";
    else { await loadCases(); loadSummary(); } // back after a restart or an outage: take the whole picture again
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      state.lastByte = performance.now();
      if (state.link !== "on") setLink("on");
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) { handleBlock(buf.slice(0, i)); buf = buf.slice(i + 2); }
    }
  } catch (_) { /* the hub went away, or the watchdog below gave up on a silent stream: retry */ }
  if (state.stream === ctrl) { setLink("reconnecting"); setTimeout(connect, 2000); }
}
// The hub sends a comment every 15 s; a stream silent for 35 s is dead even if the socket is not.
setInterval(() => {
  if (state.link === "on" && performance.now() - state.lastByte > 35000) state.stream?.abort();
  if (state.link === "reconnecting" && state.lostAt && performance.now() - state.lostAt > 10000) setLink("lost");
}, 1000);

function handleBlock(block) {
  const received = performance.now();
  let id = null, event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) id = line.slice(3).trim();
    else if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (id !== null) state.lastEventId = id;
  if (!data) return;
  const ev = JSON.parse(data);
  ev.event = event;
  ev.id = id;
  if (state.loading) state.held.push([ev, received]);
  else applyEvent(ev, received);
}

// on: green; reconnecting: amber (lost for under 10 s); lost: red
function setLink(how) {
  if (how !== "on" && state.link === "on") state.lostAt = performance.now();
  if (how === "on") state.lostAt = null;
  if (how === "reconnecting" && state.link === "lost") how = "lost";
  state.link = how;
  const el = $("#live");
  el.className = `live ${how === "on" ? "on" : how === "off" ? "off" : how}`;
  el.textContent = t(how === "on" ? "live" : how === "off" ? "offline" : how);
}

// ---- wall mode: large type, counts, flashing rows and a sound ---------------------------------------
function setWall(on) {
  state.wall = on;
  document.body.classList.toggle("wall", on);
  $("#wall-toggle").textContent = t(on ? "wall_exit" : "wall");
  $("#mute").hidden = !on;
  $("#mute").textContent = t(state.muted ? "unmute" : "mute");
  $("#sound-gate").hidden = !on || state.soundReady || state.muted;
}
const SOUND = new Audio("/board/alarm.wav");
SOUND.preload = "auto";
// The browser plays sound only after a click on the page: the gate asks for that click once.
function unlockSound() {
  SOUND.muted = true;
  SOUND.play().then(() => { SOUND.pause(); SOUND.currentTime = 0; SOUND.muted = false; state.soundReady = true; setWall(state.wall); })
    .catch(() => { SOUND.muted = false; });
}
function alarm(caseId, why) {
  const tr = state.rows.get(caseId);
  if (tr) { tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash"); }
  const entry = { case_id: caseId, why, at: performance.now(), sound: false };
  if (state.wall && !state.muted) {
    entry.sound = true;
    SOUND.currentTime = 0;
    SOUND.play().catch(() => { $("#sound-gate").hidden = false; });
  }
  state.alarms.push(entry);
  if (state.alarms.length > 200) state.alarms.shift();
  document.dispatchEvent(new CustomEvent("gw-alarm", { detail: entry }));
}

// ---- case page ---------------------------------------------------------------------------------
function describe(e) {
  const d = e.detail || {};
  const p = { ...d };
  for (const k of ["owner", "from", "to", "backup", "unit"]) if (typeof p[k] === "string") p[k] = unitLabel(p[k]);
  if (p.rating) p.rating = label("rating", p.rating);
  if (Array.isArray(p.units)) p.units = p.units.map(unitLabel).join("、");
  if (e.action === "severity_raised") { p.from = label("severity", d.from); p.to = label("severity", d.to); }
  if (e.action === "warning_raised" || e.action === "warning_lowered") {
    p.from = d.from ? label("warning", d.from) : "—"; p.to = label("warning", d.to);
    p.applied = e.action === "warning_lowered" && !d.applied ? t("tl_warning_kept") : "";
  }
  if (p.stage) p.stage = label("stage", p.stage);
  if (p.light) p.light = label("light", p.light);
  if (p.observed_at) p.observed_at = fmtTime(p.observed_at);
  for (const k of ["until", "deadline"]) if (p[k]) p[k] = fmtTime(p[k]);
  if (p.tier) p.tier = label("tier", p.tier);
  if (e.action === "notified") p.result = t(`nr_${d.result}`);
  if (e.action === "look_asked" || e.action === "look_done") { // 视频复核
    p.at_preset = d.preset ? fill(t("at_preset"), d) : "";
    p.for_sensor = d.sensor ? fill(t("for_sensor"), d) : "";
  }
  let text;
  if (e.action === "opened") text = fill(t(d.manual ? "tl_opened_manual" : "tl_opened"), p) + (d.maintenance ? t("tl_maintenance") : "");
  else if (e.action === "escalated") text = fill(t(d.stage ? "tl_escalated" : "tl_escalated_plain"), p);
  else if (e.action === "accept" && d.as_backup) text = fill(t("tl_accept_backup"), p);
  else if (e.action === "look_done") return fill(t(d.result === "snapshot" ? "tl_look_snapshot" : "tl_look_failed"), p);
  else if (I18N[state.lang][`tl_${e.action}`]) text = fill(t(`tl_${e.action}`), p);
  else text = label("action", e.action);
  const colon = state.lang === "zh-CN" ? "：" : ": ";
  const said = d.note || (e.action === "hold" ? d.reason : null) || d.text;
  const words = said ? `${colon}${said}` : "";
  return text + words;
}

function field(dl, name, value, stamp) {
  const dt = document.createElement("dt"); dt.textContent = name;
  const dd = document.createElement("dd"); dd.textContent = value; if (stamp) dd.dataset.stamp = stamp;
  dl.append(dt, dd);
}

async function openDetail(id) {
  state.detail = id;
  let c;
  try { c = await api(`/api/v1/cases/${encodeURIComponent(id)}`); } catch (e) { $("#action-error").textContent = e.message; return; }
  // closed (×) or another case opened while this one was being read: a late answer does not reopen the panel
  if (state.detail !== id) return;
  c._fetched = performance.now();
  const body = $("#detail-body");
  const h = document.createElement("h2");
  h.textContent = `${label("category", c.category)} · ${label("severity", c.severity)}`;
  if (c.warning) h.append(" ", warningBadge(c.warning));
  const sub = document.createElement("p");
  sub.textContent = `${where(c)} · ${c.grid ? unitName(c.grid) : ""} → ${unitLabel(c.owner)} · ${label("status", c.status)} · ${label("light", c.clock?.light)}`;
  sub.className = "c-summary";
  const msg = document.createElement("p"); msg.className = "c-title"; msg.textContent = c.title || "";
  const clock = document.createElement("dl"); clock.className = "clock";
  const k = clockNow(c);
  if (k) {
    field(clock, `${t("stage_clock")}（${label("stage", c.clock.stage)}）`, `${fmtDur(k.elapsed)} · ${k.remaining < 0 ? `${t("overdue")} ${fmtDur(-k.remaining)}` : fmtDur(k.remaining)}`, "clock");
    field(clock, t("deadline"), fmtTime(c.clock.deadline || new Date(Date.now() + k.remaining * 1000).toISOString()), "deadline");
  }
  field(clock, t("since_report"), fmtDur((Date.now() - Date.parse(c.opened_at)) / 1000), "since_report");
  if (c.backup) field(clock, t("c_backup"), unitLabel(c.backup));
  if (c.repeat_of) field(clock, t("c_repeat_of"), c.repeat_of);
  if (c.reopened) field(clock, t("c_reopened"), String(c.reopened));
  field(clock, t("c_id"), c.id);
  const stages = document.createElement("ol"); stages.className = "stages"; stages.id = "stages"; // 流程看板
  for (const st of c.stages || []) {
    const li = document.createElement("li"); li.dataset.stage = st.stage; li.dataset.state = st.state;
    li.className = `${st.state}${st.late ? " late" : ""}${st.light ? ` ${st.light}` : ""}`;
    const name = document.createElement("b"); name.textContent = label("stage", st.stage);
    const info = document.createElement("span");
    info.textContent = st.state === "done" ? `${st.by ? `${st.by === "routing" ? t("routed") : st.by} · ` : ""}${fmtTime(st.ended_at)}${st.late ? ` · ${t("overdue")}` : ""}`
      : st.state === "running" ? `${unitLabel(c.owner)}${st.late ? ` · ${t("overdue")}` : ""}` : t(`st_${st.state}`);
    li.append(name, info);
    stages.append(li);
  }
  for (const p of c.parts || []) {
    const li = document.createElement("li"); li.className = `part ${p.reported_at ? "done" : "running"}`; li.dataset.part = p.unit;
    li.textContent = `${t("part")} ${unitLabel(p.unit)} · ${p.reported_at ? `${t("part_done")} ${fmtTime(p.reported_at)}` : p.signed_at ? t("part_signed") : t("part_waiting")}`;
    stages.append(li);
  }
  if (c.rating) field(clock, t("rating"), label("rating", c.rating));
  if (c.rejections) field(clock, t("rejections"), String(c.rejections));
  const dl = document.createElement("dl");
  for (const key of ["opened_at", "first_seen", "first_received", "dispatched_at", "stage_started_at", "accepted_at", "resolved_at", "verified_at", "closed_at", "last_seen", "cleared_at"]) {
    if (c[key]) field(dl, t(key), fmtTime(c[key]), key);
  }
  const tl = document.createElement("ol"); tl.className = "timeline";
  for (const e of c.timeline) {
    const li = document.createElement("li");
    const when = document.createElement("time"); when.textContent = fmtTime(e.at);
    const who = document.createElement("b");
    who.textContent = SYSTEM_ACTORS.has(e.actor) ? t("system") : (e.detail && e.detail.by ? `${e.detail.by}（${e.actor}）` : e.actor);
    const what = document.createElement("span"); what.textContent = describe(e);
    li.append(when, " ", who, " ", what); li.dataset.action = e.action;
    tl.append(li);
  }
  const alerts = document.createElement("ul");
  for (const a of c.alerts) {
    const li = document.createElement("li");
    li.textContent = `${fmtTime(a.observed_at)} ${a.state === "firing" ? "●" : "○"} ${a.device_id || ""} ${a.value ?? ""} ${a.message || ""}`;
    alerts.append(li);
  }
  const photoUrls = new Set(c.photos.map((p) => p.url));
  const ev = document.createElement("div"); ev.className = "evidence";
  const image = (url, caption) => {
    const fig = document.createElement("figure");
    const img = document.createElement("img"); img.alt = caption;
    api(url).then((res) => res.blob()).then((b) => { img.src = URL.createObjectURL(b); }).catch(() => {});
    const cap = document.createElement("figcaption"); cap.textContent = caption;
    fig.append(img, cap);
    return fig;
  };
  for (const p of c.photos) ev.append(image(p.url, `${t("photo")} · ${fmtTime(p.at)} · ${p.actor}${p.note ? ` · ${p.note}` : ""}`));
  for (const k of c.clips || []) { // the camera's own recording around the alarm (MP4), played here
    const fig = document.createElement("figure"); fig.className = "clip";
    const video = document.createElement("video"); video.controls = true; video.muted = true; video.preload = "metadata";
    api(k.url).then((res) => res.blob()).then((b) => { video.src = URL.createObjectURL(b); }).catch(() => {});
    const cap = document.createElement("figcaption");
    cap.textContent = `${t("clip")} · ${k.start ? `${fmtTime(k.start)} – ${fmtTime(k.end)}` : fmtTime(k.at)}${k.note ? ` · ${k.note}` : ""}`;
    fig.append(video, cap);
    ev.append(fig);
  }
  c.evidence.filter((u) => !photoUrls.has(u)).forEach((u) => ev.append(image(u, t("evidence"))));
  const title = (key) => { const e = document.createElement("h3"); e.textContent = t(key); return e; };
  body.replaceChildren(h, sub, msg, clock, stages, title("evidence"), ev, title("timeline"), tl, title("alerts"), alerts, title("stamps"), dl);
  // a refresh of the case on show (an event, the result of an action) keeps what the operator is typing
  // and the reason the last action was refused; another case starts clean
  const fresh = state.shown !== id;
  if (fresh || $("#actions").dataset.status !== c.status) {
    renderActions(c);
    if (state.shown !== id) $("#action-error").textContent = "";
    state.shown = id;
  }
  $("#detail").dataset.case = c.id;
  $("#detail").hidden = false;
  if (fresh) $("#detail").scrollTop = 0;
}

// Only the actions the hub says this caller may take now
function renderActions(c) {
  const box = $("#actions");
  box.replaceChildren();
  box.dataset.status = c.status;
  const controls = c.controls || [];
  if (!state.me.can_act || (!c.actions.length && !controls.length)) return;
  const note = document.createElement("input"); note.id = "action-note"; note.placeholder = `${t("note")} / ${t("reason")}`;
  box.append(note);
  for (const action of c.actions.filter((a) => !["transfer", "dispatch", "callback"].includes(a))) {
    const b = document.createElement("button"); b.type = "button"; b.textContent = label("action", action); b.dataset.action = action;
    b.addEventListener("click", () => act(c.id, action, { note: note.value || null }));
    box.append(b);
  }
  if (c.actions.includes("transfer")) {
    const unit = document.createElement("select"); unit.id = "action-unit"; unit.setAttribute("aria-label", t("to_unit"));
    unit.append(...state.me.units.map((u) => option(u.id, `${u.name} (${label("level", u.level)})`, u.id === c.owner)));
    const tb = document.createElement("button"); tb.type = "button"; tb.textContent = label("action", "transfer"); tb.dataset.action = "transfer";
    tb.addEventListener("click", () => act(c.id, "transfer", { unit: unit.value, note: note.value || null }));
    box.append(unit, tb);
  }
  if (c.actions.includes("dispatch")) { // 派单: the lead unit and the assisting ones (协办)
    const targets = state.me.dispatch_to || [];
    const unit = document.createElement("select"); unit.id = "dispatch-unit"; unit.setAttribute("aria-label", t("dispatch_to"));
    unit.append(...targets.map((u) => option(u.id, `${u.name} (${label("level", u.level)})`, false)));
    const assist = document.createElement("select"); assist.id = "dispatch-assist"; assist.multiple = true; assist.setAttribute("aria-label", t("assist"));
    assist.append(...targets.filter((u) => u.level === "department").map((u) => option(u.id, u.name, false)));
    const db = document.createElement("button"); db.type = "button"; db.textContent = label("action", "dispatch"); db.dataset.action = "dispatch";
    db.addEventListener("click", () => act(c.id, "dispatch", { unit: unit.value, note: note.value || null,
      assist: [...assist.selectedOptions].map((o) => o.value).filter((v) => v !== unit.value) }));
    box.append(unit, assist, db);
  }
  if (c.actions.includes("callback")) { // 回访: the answer, with the note
    const rating = document.createElement("select"); rating.id = "callback-rating"; rating.setAttribute("aria-label", t("rating"));
    rating.append(...["satisfied", "basically", "unsatisfied"].map((r, i) => option(r, label("rating", r), i === 0)));
    const cb = document.createElement("button"); cb.type = "button"; cb.textContent = label("action", "callback"); cb.dataset.action = "callback";
    cb.addEventListener("click", () => act(c.id, "callback", { rating: rating.value, note: note.value || null }));
    box.append(rating, cb);
  }
  for (const p of (c.parts || []).filter(() => controls.includes("part_sign") || controls.includes("part_report"))) {
    const mine = (state.me.units || []).some((u) => u.id === p.unit) || !state.me.unit;
    if (!mine) continue;
    if (!p.signed_at && controls.includes("part_sign")) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = t("part_sign"); b.dataset.action = "part_sign";
      b.addEventListener("click", () => control(c.id, `parts/${p.unit}/sign`, {}));
      box.append(b);
    }
    if (!p.reported_at && controls.includes("part_report")) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = t("part_report"); b.dataset.action = "part_report";
      b.addEventListener("click", () => control(c.id, `parts/${p.unit}/report`, { note: note.value || null }));
      box.append(b);
    }
  }
  if (controls.includes("suspension")) { // 挂起, asked of the level above with the note as its reason
    const sb = document.createElement("button"); sb.type = "button"; sb.textContent = t("ask_suspension"); sb.dataset.action = "suspension";
    sb.addEventListener("click", () => control(c.id, "suspension", { reason: note.value || "" }));
    box.append(sb);
  }
  if (controls.includes("extension")) { // 延期: a later deadline, asked with the note as its reason
    const until = document.createElement("input"); until.type = "datetime-local"; until.id = "ext-until"; until.setAttribute("aria-label", t("ext_until"));
    const eb = document.createElement("button"); eb.type = "button"; eb.textContent = t("ask_extension"); eb.dataset.action = "extension";
    eb.addEventListener("click", () => control(c.id, "extension", { reason: note.value || "", until: until.value ? new Date(until.value).toISOString() : null }));
    box.append(until, eb);
  }
  // 挂起 and 延期 waiting for the dispatching level: what was asked, and its two answers
  for (const [kind, prefix, id] of [["suspension", "sus", "sus-request"], ["extension", "ext", "ext-request"]]) {
    const asked = (c.requests || []).find((r) => r.kind === kind && !r.decision);
    if (!asked || !controls.includes(`decide_${kind}`)) continue;
    const what = document.createElement("p"); what.className = "request"; what.id = id;
    what.textContent = `${t(`${prefix}_asked`)}：${asked.until ? `${fmtTime(asked.until)} · ` : ""}${asked.reason} · ${asked.requested_by}`;
    box.append(what);
    for (const d of ["approve", "refuse"]) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = t(`${prefix}_${d}`); b.dataset.action = `${d}_${kind}`;
      b.addEventListener("click", () => control(c.id, `${kind}/${asked.id}/${d}`, { note: note.value || null }));
      box.append(b);
    }
  }
  if (controls.includes("send_back")) { // 退回: with the note as its reason
    const bb = document.createElement("button"); bb.type = "button"; bb.textContent = t("send_back"); bb.dataset.action = "send_back";
    bb.addEventListener("click", () => control(c.id, "send_back", { reason: note.value || "" }));
    box.append(bb);
  }
  if (controls.includes("supervise")) { // 督办 from above: the note is the order, the date the reply deadline
    const by = document.createElement("input"); by.type = "datetime-local"; by.id = "sv-until"; by.setAttribute("aria-label", t("sv_until"));
    const sb = document.createElement("button"); sb.type = "button"; sb.textContent = t("supervise"); sb.dataset.action = "supervise";
    sb.addEventListener("click", () => control(c.id, "supervise", { order: note.value || "", until: by.value ? new Date(by.value).toISOString() : null }));
    box.append(by, sb);
  }
  const order = (c.requests || []).find((r) => r.kind === "supervision" && !r.decision);
  if (order && controls.includes("reply_supervision")) {
    const what = document.createElement("p"); what.className = "request"; what.id = "sv-order";
    what.textContent = `${t("sv_order")}：${order.reason} · ${t("sv_reply_by")} ${fmtTime(order.until)} · ${order.requested_by}`;
    const rb = document.createElement("button"); rb.type = "button"; rb.textContent = t("sv_reply"); rb.dataset.action = "reply_supervision";
    rb.addEventListener("click", () => control(c.id, `supervise/${order.id}/reply`, { note: note.value || "" }));
    box.append(what, rb);
  }
  if (controls.includes("look")) { // 视频复核: the camera that covers the device turned to its preset, its picture added
    const lb = document.createElement("button"); lb.type = "button"; lb.textContent = t("look"); lb.dataset.action = "look";
    lb.addEventListener("click", () => control(c.id, "look", {}));
    box.append(lb);
  }
  const photo = document.createElement("label"); photo.className = "file photo";
  const input = document.createElement("input"); input.type = "file"; input.id = "photo-input"; input.accept = "image/jpeg,image/png,image/webp"; input.setAttribute("capture", "environment");
  input.addEventListener("change", () => { if (input.files[0]) addPhoto(c.id, input.files[0], note.value || null); });
  const span = document.createElement("span"); span.textContent = t("add_photo");
  photo.append(span, input);
  box.append(photo);
}

async function addPhoto(id, file, note) {
  $("#action-error").textContent = "";
  try {
    await api(`/api/v1/cases/${encodeURIComponent(id)}/photos${note ? `?note=${encodeURIComponent(note)}` : ""}`,
      { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    openDetail(id);
  } catch (e) { $("#action-error").textContent = `${t("not_allowed")}: ${e.message}`; }
}

async function control(id, path, body) {
  $("#action-error").textContent = "";
  try {
    await api(`/api/v1/cases/${encodeURIComponent(id)}/${path}`, { method: "POST", body: JSON.stringify(body) });
    const note = $("#action-note");
    if (note) note.value = "";
    state.shown = null;
    openDetail(id);
  } catch (e) { $("#action-error").textContent = `${t("not_allowed")}: ${e.message}`; }
}

async function act(id, action, body) {
  $("#action-error").textContent = "";
  try {
    const c = await api(`/api/v1/cases/${encodeURIComponent(id)}/${action}`, { method: "POST", body: JSON.stringify(body) });
    c._fetched = performance.now();
    state.cases.set(id, c); upsertRow(c); placeRow(c);
    const note = $("#action-note");
    if (note) note.value = ""; // done: the note belonged to this action
    state.shown = null;
    openDetail(id);
  } catch (e) {
    $("#action-error").textContent = `${t("not_allowed")}: ${e.message}`;
  }
}

// ---- one-key report (一键上报) ---------------------------------------------------------------------
function openReport() {
  $("#rp-grid").replaceChildren(...grids().map((g, i) => option(g.id, g.name, i === 0 || g.id === state.me.unit)));
  const cats = Object.keys(state.labels.category);
  $("#rp-category").replaceChildren(...cats.map((k) => option(k, label("category", k), false)));
  $("#rp-tier").replaceChildren(...["general", "important", "major"].map((k, i) => option(k, label("tier", k), i === 0)));
  $("#rp-msg").textContent = "";
  $("#report").hidden = false;
}
async function submitReport(e) {
  e.preventDefault();
  const place = { address: $("#rp-place").value.trim() };
  const pos = $("#rp-place").dataset;
  if (pos.lat) { place.lat = Number(pos.lat); place.lon = Number(pos.lon); }
  try {
    const c = await api("/api/v1/cases", { method: "POST", body: JSON.stringify({ grid: $("#rp-grid").value, category: $("#rp-category").value,
      tier: $("#rp-tier").value, title: $("#rp-title").value.trim(), place: place.address || place.lat !== undefined ? place : null }) });
    const file = $("#rp-photo").files[0];
    if (file) await api(`/api/v1/cases/${c.id}/photos`, { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    $("#report-form").reset(); delete pos.lat; delete pos.lon;
    $("#report").hidden = true;
    await refreshCase(c.id);
    openDetail(c.id);
  } catch (err) { $("#rp-msg").textContent = `${t("not_allowed")}: ${err.message}`; }
}
function locate() {
  navigator.geolocation?.getCurrentPosition((p) => {
    const el = $("#rp-place");
    el.dataset.lat = p.coords.latitude.toFixed(6); el.dataset.lon = p.coords.longitude.toFixed(6);
    if (!el.value) el.value = `${el.dataset.lat}, ${el.dataset.lon}`;
  });
}

// ---- analysis ----------------------------------------------------------------------------------
// Charts scale to their box (viewBox), so they fit a phone as well as a wall.
function bars(el, pairs) {
  const w = 420, bh = 18, max = Math.max(1, ...pairs.map((p) => p[1]));
  const h = pairs.length * (bh + 4) + 4;
  const svg = [`<svg viewBox="0 0 ${w} ${h}" width="100%" role="img">`];
  pairs.forEach(([k, v], i) => {
    const y = i * (bh + 4) + 2, len = Math.round((w - 170) * v / max);
    svg.push(`<text x="0" y="${y + 13}">${esc(k)}</text><rect x="120" y="${y}" width="${len}" height="${bh}" fill="#3a7bd5"></rect><text x="${124 + len}" y="${y + 13}">${v}</text>`);
  });
  svg.push("</svg>");
  el.innerHTML = svg.join("");
}
function columns(el, pairs) {
  const w = 420, h = 140, max = Math.max(1, ...pairs.map((p) => p[1]));
  const bw = Math.min(36, Math.max(3, Math.floor((w - 10) / Math.max(1, pairs.length)) - 2));
  const svg = [`<svg viewBox="0 0 ${w} ${h + 20}" width="100%" role="img">`];
  pairs.forEach(([k, v], i) => {
    const bhh = Math.round((h - 14) * v / max), x = 5 + i * (bw + 2);
    svg.push(`<rect x="${x}" y="${h - bhh}" width="${bw}" height="${bhh}" fill="#e09f3e"><title>${esc(k)}: ${v}</title></rect>`);
    if (pairs.length <= 24 || i % Math.ceil(pairs.length / 12) === 0) svg.push(`<text x="${x}" y="${h + 14}">${esc(String(k).slice(-5))}</text>`);
  });
  svg.push("</svg>");
  el.innerHTML = svg.join("");
}
function esc(s) { return String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[ch])); }

async function loadAnalysis() {
  const days = Number($("#a-period").value);
  const since = new Date(Date.now() - days * 86400e3).toISOString();
  const s = await api(`/api/v1/stats?since=${encodeURIComponent(since)}`);
  $("#a-total").textContent = `${t("a_total")}: ${s.total}`;
  bars($("#ch-category"), Object.entries(s.by_category).map(([k, v]) => [label("category", k), v]));
  bars($("#ch-grid"), Object.entries(s.by_grid).map(([k, v]) => [unitName(k), v]));
  columns($("#ch-hour"), s.by_hour.map((v, h) => [String(h), v]));
  // every day of the period, quiet days included, as dates in the hub's time zone
  const dayOf = new Intl.DateTimeFormat("en-CA", { timeZone: state.me.tz || undefined, year: "numeric", month: "2-digit", day: "2-digit" });
  const daysList = [];
  for (let i = days - 1; i >= 0; i--) daysList.push(dayOf.format(new Date(Date.now() - i * 86400e3)));
  columns($("#ch-day"), [...new Set(daysList)].map((d) => [d, s.by_day[d] || 0]));
  loadRanking(since);
  const rows = [...s.repeated_places.map((p) => [unitName(p.grid), label("category", p.category), p.cases]), ...s.repeated_devices.map((d) => [d.device, "", d.cases])];
  $("#repeats tbody").replaceChildren(...rows.map((r) => { const tr = document.createElement("tr"); r.forEach((v) => tr.append(cell(String(v)))); return tr; }));
}

// 考核: the ranking of units over the period; a figure opens the list of the cases behind it
async function loadRanking(since) {
  const a = await api(`/api/v1/assessment?since=${encodeURIComponent(since)}`);
  const pct = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)}%`);
  const dur = (v) => (v === null || v === undefined ? "—" : fmtDur(v));
  const link = (unit, measure, text) => {
    const td = cell(text); td.className = "drill"; td.dataset.measure = measure; td.tabIndex = 0;
    td.addEventListener("click", () => showBehind(unit, measure, since));
    return td;
  };
  $("#ranking tbody").replaceChildren(...a.units.map((u) => {
    const tr = document.createElement("tr"); tr.dataset.unit = u.unit;
    tr.append(cell(String(u.rank)), cell(unitLabel(u.unit)), link(u.unit, "dispatched", String(u.dispatched)),
      link(u.unit, "accepted_late", pct(u.accepted_on_time_pct)), link(u.unit, "resolved_late", pct(u.resolved_on_time_pct)),
      cell(dur(u.mean_accept_s)), cell(dur(u.mean_resolve_s)), link(u.unit, "extended", String(u.extended)),
      link(u.unit, "overdue", String(u.overdue)), link(u.unit, "reopened", String(u.reopened)),
      link(u.unit, "sent_back", String(u.sent_back)), link(u.unit, "unsatisfied", pct(u.satisfaction_pct)));
    return tr;
  }));
  $("#a-export").href = "#";
  $("#a-export").onclick = (e) => { e.preventDefault(); download(`/api/v1/assessment/export?format=xlsx&lang=${state.lang}&since=${encodeURIComponent(since)}`, "assessment.xlsx"); };
  $("#behind").replaceChildren();
}

async function showBehind(unit, measure, since) {
  const b = await api(`/api/v1/assessment/cases?unit=${encodeURIComponent(unit)}&measure=${measure}&since=${encodeURIComponent(since)}`);
  const head = document.createElement("li"); head.className = "behind-head";
  head.textContent = `${unitLabel(unit)} · ${t(`m_${measure}`)} · ${b.cases.length} ${t("items")}`;
  $("#behind").replaceChildren(head, ...b.cases.map((id) => {
    const li = document.createElement("li"); const a = document.createElement("a"); a.href = "#"; a.textContent = id.slice(-8); a.title = id;
    a.dataset.case = id;
    a.addEventListener("click", (e) => { e.preventDefault(); openDetail(id); });
    li.append(a); return li;
  }));
}

// ---- wiring ------------------------------------------------------------------------------------
$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = $("#username").value.trim();
  // a person signs in with a name and password (and the second factor's code), or a key is typed in: either
  // way the hub sets the session in an HttpOnly cookie and answers only the CSRF value
  const body = user ? { username: user, password: $("#password").value, code: $("#otp").value.trim() || null, cookie: true }
    : { key: $("#key").value.trim(), cookie: true };
  const res = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  let got = null;
  try { got = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const code = got?.code;
    if (code === "code_required" || code === "wrong_code") { $("#otp").hidden = false; $("label[for=otp]").hidden = false; $("#otp").value = ""; $("#otp").focus(); }
    $("#login-error").textContent = res.status === 429 ? t("too_many") : code === "code_required"
      ? t(got?.params?.method === "sms" ? "sms_code_required" : "code_required")
      : code === "wrong_code" ? t("wrong_code") : user ? t("bad_password") : t("bad_key");
    return;
  }
  $("#password").value = ""; $("#key").value = ""; $("#otp").value = ""; $("#login-error").textContent = "";
  state.csrf = got.csrf;
  login();
});
$("#enrol-start").addEventListener("click", enrolStart);
$("#enrol-confirm").addEventListener("click", enrolConfirm);
$("#enrol-continue").addEventListener("click", () => login());
$("#expired").addEventListener("submit", changeExpired);
$("#lang").addEventListener("click", () => { state.lang = state.lang === "zh-CN" ? "en" : "zh-CN"; localStorage.setItem("gw-lang", state.lang); applyLang(); });
$("#logout").addEventListener("click", logout);
$("#close-detail").addEventListener("click", () => { state.detail = null; state.shown = null; $("#detail").hidden = true; });
$("#wall-toggle").addEventListener("click", () => { localStorage.setItem("gw-wall", state.wall ? "0" : "1"); setWall(!state.wall); unlockSound(); });
$("#mute").addEventListener("click", () => { state.muted = !state.muted; localStorage.setItem("gw-muted", state.muted ? "1" : "0"); if (!state.muted) unlockSound(); setWall(state.wall); });
$("#sound-gate").addEventListener("click", unlockSound);
$("#bulk-accept").addEventListener("click", bulkAccept);
$("#x-csv").addEventListener("click", () => exportCases("csv"));
$("#x-xlsx").addEventListener("click", () => exportCases("xlsx"));
$("#report-open").addEventListener("click", openReport);
$("#report-close").addEventListener("click", () => { $("#report").hidden = true; });
$("#report-form").addEventListener("submit", submitReport);
$("#rp-locate").addEventListener("click", locate);
for (const [sel, key] of [["#f-unit", "unit"], ["#f-category", "category"], ["#f-light", "light"], ["#f-status", "status"]]) {
  $(sel).addEventListener("change", (e) => {
    const before = state.filters.status;
    state.filters[key] = e.target.value;
    const widened = key === "status" && (e.target.value === "*" || e.target.value === "closed") !== (before === "*" || before === "closed");
    if (widened) loadCases(); else renderAll();
    if (key === "unit") { loadSummary(); loadDuty(); }
  });
}
$("#f-mine").addEventListener("change", (e) => { state.filters.mine = e.target.checked; renderAll(); });
let searchTimer = null;
$("#f-q").addEventListener("input", (e) => { clearTimeout(searchTimer); searchTimer = setTimeout(() => { state.filters.q = e.target.value.trim(); loadCases(); }, 300); });
for (const [sel, key] of [["#f-since", "since"], ["#f-until", "until"]]) $(sel).addEventListener("change", (e) => { state.filters[key] = e.target.value; loadCases(); });
$("#a-period").addEventListener("change", loadAnalysis);
setInterval(() => { for (const [id, tr] of state.rows) if (tr.isConnected) tickRow(state.cases.get(id), tr); }, 1000);
// Nothing is painted before the bundled CJK font is in (or 3 s have passed): no text in a face without the glyphs.
function fontsReady() {
  const done = () => document.documentElement.classList.remove("fonts-loading");
  Promise.race([document.fonts.load('16px "GW CJK"', "网格指挥"), new Promise((r) => setTimeout(r, 3000))]).then(done, done);
}
// the fleet's tabs and words (fleet.js) are in before the page is drawn and a kept key logs in again
window.addEventListener("DOMContentLoaded", () => {
  fontsReady(); applyLang();
  // a session cookie from before a reload signs in again by itself; without one the form stays
  login(true).then((ok) => {
    if (ok || !$("#secure").hidden) return;
    $("#login").hidden = false;
    if (state.openCase) $("#login-error").textContent = fill(t("open_after_login"), { id: state.openCase.slice(-8) });
  });
});
$("#filters-toggle").addEventListener("click", () => document.body.classList.toggle("filters-open"));
