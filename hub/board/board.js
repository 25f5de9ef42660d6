// gridwatch command-center board: live cases with ticking clocks and lights, case actions, analysis.
// Buildless, no outside fetches. Live updates come from the SSE stream, read with fetch() so the key
// travels in the Authorization header; the page reconnects by itself with Last-Event-ID.
"use strict";

const I18N = {
  "zh-CN": {
    title: "网格指挥中心", tab_board: "案件看板", tab_analysis: "类案分析", offline: "未连接", live: "实时",
    logout: "退出", key_label: "访问密钥（查看或操作）", login: "登录", bad_key: "密钥无效",
    f_unit: "单位", f_category: "类别", f_light: "亮灯", f_status: "状态", all: "全部", not_closed: "未办结",
    c_light: "亮灯", c_id: "案件", c_category: "类别", c_severity: "级别", c_grid: "网格", c_owner: "责任单位",
    c_status: "状态", c_elapsed: "已挂单", c_left: "剩余", c_cleared: "已消警", c_esc: "升级",
    red: "红灯", yellow: "黄灯", green: "绿灯", none: "—", overdue: "超时",
    open: "待受理", accepted: "已受理", resolved: "已处置", closed: "已办结", on_hold: "挂起",
    grid: "网格", community: "社区", street: "街道", district: "区",
    info: "提示", minor: "一般", major: "重要", critical: "紧急",
    accept: "受理", resolve: "处置", hold: "挂起", resume: "恢复", transfer: "转派", comment: "备注", close: "办结",
    note: "说明", reason: "原因", to_unit: "转派至", stamps: "时间戳", timeline: "处置过程", evidence: "证据",
    alerts: "告警数值", opened_at: "立案", accepted_at: "受理", resolved_at: "处置", closed_at: "办结",
    stage_started_at: "本阶段开始", first_seen: "首次发生（设备时间）", last_seen: "最近发生", first_received: "首次接收",
    cleared_at: "现场消警", shown: "显示", of: "共", a_category: "按类别", a_grid: "按网格", a_hour: "按时段（时）",
    a_day: "按日趋势", a_repeats: "重复发生的地点与设备", r_where: "地点/设备", r_cases: "案件数",
    needs_note: "请填写说明", not_allowed: "不允许的操作",
    opened: "立案", merged: "合并告警", light: "亮灯", escalated: "升级", backup_notified: "通知AB岗", reminder: "催办",
    condition_cleared: "现场消警", severity_raised: "级别提升", condition_returned: "告警复现",
    a_period: "时段", d7: "近7天", d30: "近30天", d90: "近90天", a_total: "案件总数",
  },
  en: {
    title: "Grid command center", tab_board: "Cases", tab_analysis: "Analysis", offline: "offline", live: "live",
    logout: "Log out", key_label: "Access key (viewer or operator)", login: "Log in", bad_key: "Unknown key",
    f_unit: "Unit", f_category: "Category", f_light: "Light", f_status: "State", all: "all", not_closed: "not closed",
    c_light: "Light", c_id: "Case", c_category: "Category", c_severity: "Severity", c_grid: "Grid", c_owner: "Owner",
    c_status: "State", c_elapsed: "Pending", c_left: "Left", c_cleared: "Cleared", c_esc: "Esc.",
    red: "RED", yellow: "YELLOW", green: "GREEN", none: "—", overdue: "overdue",
    open: "open", accepted: "accepted", resolved: "resolved", closed: "closed", on_hold: "on hold",
    grid: "grid", community: "community", street: "street", district: "district",
    info: "info", minor: "minor", major: "major", critical: "critical",
    accept: "Accept", resolve: "Resolve", hold: "Hold", resume: "Resume", transfer: "Transfer", comment: "Comment",
    close: "Close", note: "Note", reason: "Reason", to_unit: "Transfer to", stamps: "Stamps", timeline: "Timeline",
    evidence: "Evidence", alerts: "Alert values", opened_at: "Opened", accepted_at: "Accepted",
    resolved_at: "Resolved", closed_at: "Closed", stage_started_at: "Stage started", first_seen: "First seen (device)",
    last_seen: "Last seen", first_received: "First received", cleared_at: "Condition cleared", shown: "shown",
    of: "of", a_category: "By category", a_grid: "By grid", a_hour: "By hour of day", a_day: "Trend by day",
    a_repeats: "Repeated places and devices", r_where: "Place / device", r_cases: "Cases",
    needs_note: "A note is needed", not_allowed: "Not allowed",
    opened: "opened", merged: "merged", light: "light", escalated: "escalated", backup_notified: "backup notified",
    reminder: "reminder", condition_cleared: "condition cleared", severity_raised: "severity raised",
    condition_returned: "condition returned", a_period: "Period", d7: "last 7 days", d30: "last 30 days",
    d90: "last 90 days", a_total: "cases",
  },
};
const LIGHT_RANK = { red: 0, yellow: 1, green: 2 };
const $ = (sel) => document.querySelector(sel);
const state = {
  lang: localStorage.getItem("gw-lang") || "zh-CN", key: sessionStorage.getItem("gw-key") || "", me: null,
  cases: new Map(), rows: new Map(), lastEventId: null, stream: null, filters: { unit: "", category: "", light: "", status: "" },
  detail: null, shown: null, lastUpdate: null, journal: [],
};
window.gridwatch = state; // for tests and curious operators: state.lastUpdate = {case_id, event_id, ms}

function t(key) { return (I18N[state.lang] || I18N.en)[key] ?? key; }

function applyLang() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  $("#lang").textContent = state.lang === "zh-CN" ? "English" : "中文";
  setLive($("#live").classList.contains("on"));
  if (state.me) { fillFilters(); renderAll(); if (state.detail) { state.shown = null; openDetail(state.detail); } }
}

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json", ...(opts.headers || {}) } });
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
    const err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    err.status = res.status;
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

// ---- login -------------------------------------------------------------------------------------
async function login(key) {
  state.key = key;
  try {
    state.me = await api("/api/v1/me");
  } catch (e) {
    state.key = ""; sessionStorage.removeItem("gw-key");
    $("#login-error").textContent = e.status === 401 || e.status === 403 ? t("bad_key") : e.message;
    return false;
  }
  sessionStorage.setItem("gw-key", key);
  $("#login").hidden = true; $("#board").hidden = false; $("#tabs").hidden = false; $("#logout").hidden = false;
  $("#who").textContent = `${state.me.name} · ${state.me.unit || "*"}`;
  fillFilters();
  await loadCases();
  connect();
  return true;
}

function logout() {
  sessionStorage.removeItem("gw-key");
  location.reload();
}

// ---- cases -------------------------------------------------------------------------------------
async function loadCases() {
  // the board is about what is still open; closed cases are only fetched when the filter asks for them
  const closed = state.filters.status === "*" || state.filters.status === "closed";
  const data = await api(`/api/v1/cases?limit=5000${closed ? "" : "&status=open,accepted,on_hold,resolved"}`);
  const now = performance.now();
  state.cases.clear();
  for (const c of data.cases) { c._fetched = now; state.cases.set(c.id, c); }
  fillFilters(); renderAll();
}

// An event updates its row at once from what the event carries; the full case (clock, stamps) follows
// from a coalesced refetch, at most a few at a time, so a burst of events never floods the hub.
function applyEvent(ev, received) {
  let c = state.cases.get(ev.case_id);
  if (!c) { c = { id: ev.case_id, clock: null, cleared_at: null, _fetched: performance.now() }; state.cases.set(ev.case_id, c); fillFilters(); }
  for (const k of ["status", "owner", "grid", "category", "severity", "escalations"]) if (ev[k] !== undefined) c[k] = ev[k];
  if (ev.action === "light" && ev.detail?.light && c.clock) c.clock.light = ev.detail.light;
  if (ev.action === "condition_cleared") c.cleared_at = ev.at;
  if (ev.action === "condition_returned") c.cleared_at = null;
  upsertRow(c);
  placeRow(c);
  state.lastUpdate = { case_id: ev.case_id, event_id: ev.id, event: ev.event, ms: performance.now() - received };
  document.dispatchEvent(new CustomEvent("gw-row-updated", { detail: state.lastUpdate }));
  queueRefresh(ev.case_id);
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

function unitLabel(id) {
  const u = state.me?.units.find((x) => x.id === id);
  return u ? `${u.name} (${t(u.level)})` : id;
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
  if (f.category && c.category !== f.category) return false;
  if (f.light && c.clock?.light !== f.light) return false;
  if (f.status === "" && c.status === "closed") return false;
  if (f.status && f.status !== "*" && c.status !== f.status) return false;
  return true;
}

function urgency(a, b) {
  const la = LIGHT_RANK[a.clock?.light] ?? 3, lb = LIGHT_RANK[b.clock?.light] ?? 3;
  if (la !== lb) return la - lb;
  const ra = clockNow(a)?.remaining ?? Infinity, rb = clockNow(b)?.remaining ?? Infinity;
  return ra - rb;
}

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }

function upsertRow(c) {
  let tr = state.rows.get(c.id);
  if (!tr) { tr = document.createElement("tr"); tr.dataset.case = c.id; tr.addEventListener("click", () => openDetail(c.id)); state.rows.set(c.id, tr); }
  const light = c.clock?.light || "none";
  if (tr.dataset.light !== light || tr.dataset.owner !== c.owner) { // what changed recently, newest last
    state.journal.push({ case_id: c.id, light, owner: c.owner, at: Date.now() / 1000 });
    if (state.journal.length > 1000) state.journal.shift();
  }
  tr.className = light;
  tr.dataset.light = light; tr.dataset.owner = c.owner; tr.dataset.status = c.status;
  const badge = document.createElement("span");
  badge.className = `light ${light}`; badge.textContent = t(light);
  const first = document.createElement("td"); first.className = "c-light"; first.append(badge);
  tr.replaceChildren(first, cell(c.id, "c-id"), cell(c.category, "c-category"), cell(t(c.severity), "c-severity"),
    cell(c.grid, "c-grid"), cell(unitLabel(c.owner), "c-owner"), cell(t(c.status), "c-status"),
    cell("", "num c-elapsed"), cell("", "num c-left"), cell(c.cleared_at ? "✓" : "", "c-cleared"), cell(String(c.escalations), "num c-esc"));
  tickRow(c, tr);
}

function tickRow(c, tr) {
  const k = clockNow(c);
  const el = tr.children[7], left = tr.children[8];
  if (!k) { el.textContent = "—"; left.textContent = "—"; return; }
  el.textContent = fmtDur(k.elapsed);
  left.textContent = k.remaining < 0 ? `${t("overdue")} ${fmtDur(-k.remaining)}` : fmtDur(k.remaining);
  left.classList.toggle("overdue", k.remaining < 0);
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

function renderAll() {
  const list = [...state.cases.values()].filter(visible).sort(urgency);
  for (const c of list) upsertRow(c);
  $("#cases tbody").replaceChildren(...list.map((c) => state.rows.get(c.id)));
  updateCounts();
}

function updateCounts() {
  $("#counts").textContent = `${t("shown")} ${$("#cases tbody").children.length} ${t("of")} ${state.cases.size}`;
}

function option(value, label, selected) { const o = document.createElement("option"); o.value = value; o.textContent = label; o.selected = selected; return o; }

function fillFilters() {
  const f = state.filters, me = state.me;
  const depth = (u) => { let d = 0, p = u.parent; while (p && me.units.some((x) => x.id === p)) { d++; p = me.units.find((x) => x.id === p).parent; } return d; };
  const ordered = [];
  const roots = me.units.filter((u) => !me.units.some((y) => y.id === u.parent));
  const visit = (u) => { ordered.push(u); for (const ch of me.units.filter((x) => x.parent === u.id)) visit(ch); };
  roots.forEach(visit);
  $("#f-unit").replaceChildren(option("", t("all"), !f.unit), ...ordered.map((u) => option(u.id, `${"\u3000".repeat(depth(u))}${u.name} (${t(u.level)})`, f.unit === u.id)));
  const cats = [...new Set([...state.cases.values()].map((c) => c.category))].sort();
  $("#f-category").replaceChildren(option("", t("all"), !f.category), ...cats.map((c) => option(c, c, f.category === c)));
  $("#f-light").replaceChildren(option("", t("all"), !f.light), ...["red", "yellow", "green"].map((l) => option(l, t(l), f.light === l)));
  $("#f-status").replaceChildren(option("", t("not_closed"), f.status === ""), option("*", t("all"), f.status === "*"),
    ...["open", "accepted", "on_hold", "resolved", "closed"].map((s) => option(s, t(s), f.status === s)));
}

// ---- the stream --------------------------------------------------------------------------------
async function connect() {
  const ctrl = new AbortController();
  state.stream = ctrl;
  const headers = { Authorization: `Bearer ${state.key}` };
  if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
  try {
    const res = await fetch("/api/v1/stream", { headers, signal: ctrl.signal });
    if (res.status === 401 || res.status === 403) { // the key was withdrawn: back to the login form
      sessionStorage.removeItem("gw-key");
      state.stream = null;
      for (const sec of document.querySelectorAll("section[data-tab-section]")) sec.hidden = true;
      $("#tabs").hidden = true; $("#login").hidden = false;
      $("#login-error").textContent = t("bad_key");
      return;
    }
    if (!res.ok) throw new Error(`stream ${res.status}`);
    setLive(true);
    if (state.lastEventId === null) state.lastEventId = "";
    else await loadCases(); // back after a restart or an outage: take the whole picture again
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) { handleBlock(buf.slice(0, i)); buf = buf.slice(i + 2); }
    }
  } catch (_) { /* the hub went away: retry below */ }
  setLive(false);
  if (state.stream === ctrl) setTimeout(connect, 2000);
}

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
  applyEvent(ev, received);
}

function setLive(on) { const el = $("#live"); el.className = `live ${on ? "on" : "off"}`; el.textContent = t(on ? "live" : "offline"); }

// ---- case page ---------------------------------------------------------------------------------
async function openDetail(id) {
  state.detail = id;
  let c;
  try { c = await api(`/api/v1/cases/${encodeURIComponent(id)}`); } catch (e) { $("#action-error").textContent = e.message; return; }
  const body = $("#detail-body");
  const dl = document.createElement("dl");
  for (const k of ["opened_at", "first_seen", "first_received", "stage_started_at", "accepted_at", "resolved_at", "closed_at", "last_seen", "cleared_at"]) {
    const dt = document.createElement("dt"); dt.textContent = t(k);
    const dd = document.createElement("dd"); dd.textContent = fmtTime(c[k]); dd.dataset.stamp = k;
    dl.append(dt, dd);
  }
  const h = document.createElement("h2");
  h.textContent = `${c.id} · ${c.category} · ${t(c.severity)}`;
  const sub = document.createElement("p");
  sub.textContent = `${c.grid} ${c.device || ""} → ${unitLabel(c.owner)} · ${t(c.status)} · ${t(c.clock?.light || "none")}`;
  sub.className = "c-summary";
  const tl = document.createElement("ol");
  for (const e of c.timeline) {
    const li = document.createElement("li");
    const detail = e.detail && Object.keys(e.detail).length ? ` ${JSON.stringify(e.detail)}` : "";
    li.textContent = `${fmtTime(e.at)} ${e.actor}: ${t(e.action)}${detail}`;
    tl.append(li);
  }
  const alerts = document.createElement("ul");
  for (const a of c.alerts) {
    const li = document.createElement("li");
    li.textContent = `${a.state} ${a.rule_id} ${a.device_id || ""} ${a.value ?? ""} — ${a.message || ""}`;
    alerts.append(li);
  }
  const ev = document.createElement("div");
  for (const url of c.evidence) {
    const img = document.createElement("img");
    img.alt = t("evidence");
    api(url).then((res) => res.blob()).then((b) => { img.src = URL.createObjectURL(b); }).catch(() => {});
    ev.append(img);
  }
  const title = (k) => { const e = document.createElement("h3"); e.textContent = t(k); return e; };
  body.replaceChildren(h, sub, title("stamps"), dl, title("evidence"), ev, title("alerts"), alerts, title("timeline"), tl);
  // a refresh of the case on show (an event, the result of an action) keeps what the operator is typing
  // and the reason the last action was refused; another case starts clean
  if (state.shown !== id) { renderActions(c); $("#action-error").textContent = ""; state.shown = id; }
  $("#detail").hidden = false;
}

function renderActions(c) {
  const box = $("#actions");
  box.replaceChildren();
  if (!state.me.can_act) return;
  const note = document.createElement("input"); note.id = "action-note"; note.placeholder = `${t("note")} / ${t("reason")}`;
  const unit = document.createElement("select"); unit.id = "action-unit";
  unit.append(...state.me.units.map((u) => option(u.id, `${u.name} (${t(u.level)})`, u.id === c.owner)));
  box.append(note);
  for (const action of ["accept", "resolve", "hold", "resume", "comment", "close"]) {
    const b = document.createElement("button"); b.type = "button"; b.textContent = t(action); b.dataset.action = action;
    b.addEventListener("click", () => act(c.id, action, { note: note.value || null }));
    box.append(b);
  }
  const tb = document.createElement("button"); tb.type = "button"; tb.textContent = t("transfer"); tb.dataset.action = "transfer";
  tb.addEventListener("click", () => act(c.id, "transfer", { unit: unit.value, note: note.value || null }));
  box.append(unit, tb);
}

async function act(id, action, body) {
  $("#action-error").textContent = "";
  try {
    const c = await api(`/api/v1/cases/${encodeURIComponent(id)}/${action}`, { method: "POST", body: JSON.stringify(body) });
    c._fetched = performance.now();
    state.cases.set(id, c); upsertRow(c); placeRow(c);
    const note = $("#action-note");
    if (note) note.value = ""; // done: the note belonged to this action
    openDetail(id);
  } catch (e) {
    $("#action-error").textContent = `${t("not_allowed")}: ${e.message}`;
  }
}

// ---- analysis ----------------------------------------------------------------------------------
function bars(el, pairs) {
  const w = 420, bh = 18, max = Math.max(1, ...pairs.map((p) => p[1]));
  const svg = [`<svg width="${w}" height="${pairs.length * (bh + 4) + 4}" role="img">`];
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
  const svg = [`<svg width="${w}" height="${h + 20}" role="img">`];
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
  bars($("#ch-category"), Object.entries(s.by_category));
  bars($("#ch-grid"), Object.entries(s.by_grid));
  columns($("#ch-hour"), s.by_hour.map((v, h) => [String(h), v]));
  // every day of the period, quiet days included, as dates in the hub's time zone
  const dayOf = new Intl.DateTimeFormat("en-CA", { timeZone: state.me.tz || undefined, year: "numeric", month: "2-digit", day: "2-digit" });
  const daysList = [];
  for (let i = days - 1; i >= 0; i--) daysList.push(dayOf.format(new Date(Date.now() - i * 86400e3)));
  columns($("#ch-day"), [...new Set(daysList)].map((d) => [d, s.by_day[d] || 0]));
  const rows = [...s.repeated_places.map((p) => [p.grid, p.category, p.cases]), ...s.repeated_devices.map((d) => [d.device, "", d.cases])];
  $("#repeats tbody").replaceChildren(...rows.map((r) => { const tr = document.createElement("tr"); r.forEach((v) => tr.append(cell(String(v)))); return tr; }));
}

// ---- wiring ------------------------------------------------------------------------------------
$("#login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("#key").value.trim()); });
$("#lang").addEventListener("click", () => { state.lang = state.lang === "zh-CN" ? "en" : "zh-CN"; localStorage.setItem("gw-lang", state.lang); applyLang(); });
$("#logout").addEventListener("click", logout);
$("#close-detail").addEventListener("click", () => { state.detail = null; state.shown = null; $("#detail").hidden = true; });
for (const [sel, key] of [["#f-unit", "unit"], ["#f-category", "category"], ["#f-light", "light"], ["#f-status", "status"]]) {
  $(sel).addEventListener("change", (e) => {
    const before = state.filters.status;
    state.filters[key] = e.target.value;
    const widened = key === "status" && (e.target.value === "*" || e.target.value === "closed") && before !== "*" && before !== "closed";
    if (widened) loadCases(); else renderAll();
  });
}
$("#a-period").addEventListener("change", loadAnalysis);
setInterval(() => { for (const [id, tr] of state.rows) if (tr.isConnected) tickRow(state.cases.get(id), tr); }, 1000);
// the fleet's tabs and words (fleet.js) are in before the page is drawn and a kept key logs in again
window.addEventListener("DOMContentLoaded", () => { applyLang(); if (state.key) login(state.key); });
