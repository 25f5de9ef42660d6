// gridwatch board, the fleet: the map (一张图), the device registry, rule sets (an editor checked as you
// type, versions with diffs, backtest, staged deploy and rollback), the edge agents, maintenance windows.
// Uses board.js's api(), t(), state, $, esc(), cell(), option(), grids() and openDetail().
"use strict";

Object.assign(I18N["zh-CN"], {
  tab_map: "一张图", tab_devices: "设备", tab_rules: "规则", tab_agents: "边缘节点", tab_maint: "检修屏蔽",
  ok: "正常", alarm: "告警", unknown: "状态未知", maintenance: "检修中", online: "在线", late: "迟报",
  d_search: "搜索（编号、名称、地址）", d_id: "编号", d_name: "名称", d_kind: "类型", d_grid: "网格", d_place: "地址",
  d_coords: "坐标", d_vendor: "厂商/型号", d_camera: "联动摄像机（视频复核）", d_preset: "预置位", d_state: "状态", d_save: "保存设备", d_import: "导入 CSV/XLSX", d_export: "导出",
  d_imported: "已导入", d_new: "新设备", sensor: "传感器", fence: "电子围栏", camera: "摄像机", thermal: "热成像",
  r_editor: "规则集（YAML）", r_check_ok: "检查通过", r_rules: "条规则", r_save: "保存为新版本", r_note: "修改说明",
  r_versions: "版本", r_version: "版本", r_author: "作者", r_time: "时间", r_deploy_all: "全部下发",
  r_deploy_grids: "下发至网格", r_diff: "差异", r_backtest: "回测", r_capture: "录制数据", r_agents: "节点运行版本",
  r_deploys: "下发记录", r_load: "载入编辑", r_targets: "目标", r_everywhere: "全部",
  a_id: "节点", a_state: "状态", a_grids: "网格", a_running: "运行版本", a_wanted: "应运行", a_seen: "最近心跳",
  a_outbox: "待发告警", a_oldest: "最早未发", a_broker: "消息链路", a_problem: "问题", a_devices: "设备数",
  m_scope: "范围", m_target: "对象", m_reason: "原因", m_start: "开始", m_end: "结束", m_repeat: "每周重复",
  m_days: "星期", m_from: "每日自", m_to: "至", m_add: "新增检修窗口", m_cancel: "结束", m_active: "生效中",
  m_held: "暂存告警", device: "设备", rule: "规则", m_waiting: "未生效",
  d_guard: "布防", g_armed: "布防", g_disarmed: "撤防", g_pending: "待设备确认", g_arm: "布防", g_disarm: "撤防",
  g_none: "—", g_confirm_disarm: "撤防后该设备的报警将不再立案，确定撤防 {id}？",
  map_legend: "设备：正常 / 告警 / 离线 / 未知 / 检修；案件：按亮灯",
  tab_notices: "通知记录", n_all: "全部", n_pending: "待发送", n_stopped: "已取消", n_case: "案件", n_kind: "事件",
  n_channel: "渠道", n_to: "接收人", n_attempts: "尝试", n_error: "原因",
});
Object.assign(I18N.en, {
  tab_map: "Map", tab_devices: "Devices", tab_rules: "Rules", tab_agents: "Agents", tab_maint: "Maintenance",
  ok: "ok", alarm: "alarm", unknown: "unknown", maintenance: "maintenance", online: "online", late: "late",
  d_search: "search (id, name, address)", d_id: "Id", d_name: "Name", d_kind: "Kind", d_grid: "Grid", d_place: "Address",
  d_guard: "Guard", g_armed: "armed", g_disarmed: "disarmed", g_pending: "waiting for the device", g_arm: "Arm",
  g_disarm: "Disarm", g_none: "—", g_confirm_disarm: "Once disarmed, this device's alarms open no case. Disarm {id}?",
  d_coords: "Coordinates", d_vendor: "Vendor/model", d_camera: "Linked camera (video check)", d_preset: "Preset", d_state: "State", d_save: "Save device", d_import: "Import CSV/XLSX",
  d_export: "Export", d_imported: "imported", d_new: "new device", sensor: "sensor", fence: "fence", camera: "camera",
  thermal: "thermal", r_editor: "Rule set (YAML)", r_check_ok: "checks pass", r_rules: "rules", r_save: "Save as new version",
  r_note: "what changed", r_versions: "Versions", r_version: "Version", r_author: "Author", r_time: "Time",
  r_deploy_all: "Deploy to all", r_deploy_grids: "Deploy to grids", r_diff: "Diff", r_backtest: "Backtest",
  r_capture: "capture", r_agents: "What agents run", r_deploys: "Deploys", r_load: "Edit", r_targets: "Targets",
  r_everywhere: "all", a_id: "Agent", a_state: "State", a_grids: "Grids", a_running: "Runs", a_wanted: "Should run",
  a_seen: "Last heartbeat", a_outbox: "Unsent", a_oldest: "Oldest unsent", a_broker: "Broker", a_problem: "Problem",
  a_devices: "Devices", m_scope: "Scope", m_target: "Target", m_reason: "Reason", m_start: "Start", m_end: "End",
  m_repeat: "weekly", m_days: "days", m_from: "daily from", m_to: "to", m_add: "Add window", m_cancel: "End now",
  m_active: "in force", m_held: "held alerts", device: "device", rule: "rule", m_waiting: "waiting",
  map_legend: "devices: ok / alarm / offline / unknown / maintenance; cases by light",
  tab_notices: "Notices", n_all: "all", n_pending: "to send", n_stopped: "stopped", n_case: "Case", n_kind: "Event",
  n_channel: "Channel", n_to: "To", n_attempts: "Tries", n_error: "Why",
});

const fleet = { devices: [], edit: null, checkTimer: null, lastCheck: null, versions: [] };
window.gridwatchFleet = fleet;
const LOADERS = { analysis: () => loadAnalysis() };

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...kids);
  return e;
}
function row(...cells) { return el("tr", {}, ...cells.map((c) => (c instanceof Node ? el("td", {}, c) : cell(String(c ?? "—"))))); }
function badge(stateName) { return el("span", { class: `dev ${stateName}`, text: t(stateName) }); }
function say(target, text, bad = false) { const p = $(target); p.textContent = text; p.classList.toggle("error", bad); }

// ---- tabs ------------------------------------------------------------------------------------------
function showTab(name) {
  for (const x of document.querySelectorAll("#tabs button")) x.classList.toggle("active", x.dataset.tab === name);
  for (const s of document.querySelectorAll("section[data-tab-section]")) s.hidden = s.id !== name;
  (LOADERS[name] || (() => {}))();
}
window.gridwatchShowTab = showTab;

// ---- the map ---------------------------------------------------------------------------------------
const merc = (lon, lat) => { const s = Math.sin((lat * Math.PI) / 180); return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)]; };
LOADERS.map = async function loadMap() {
  const m = await api("/api/v1/map");
  fleet.map = m;
  const pts = [...m.grids.flatMap((g) => g.area), ...m.devices.map((d) => [d.lon, d.lat]), ...m.cases.map((c) => [c.lon, c.lat])];
  const box = $("#map-box");
  if (!pts.length) { box.replaceChildren(el("p", { text: "—" })); return; }
  const xy = pts.map(([lon, lat]) => merc(lon, lat));
  let [x0, y0, x1, y1] = [Math.min(...xy.map((p) => p[0])), Math.min(...xy.map((p) => p[1])), Math.max(...xy.map((p) => p[0])), Math.max(...xy.map((p) => p[1]))];
  const span = Math.max(x1 - x0, y1 - y0, 1e-6);
  const zoom = Math.max(0, Math.min(19, Math.floor(Math.log2(900 / (span * 256)))));
  const scale = 256 * 2 ** zoom, pad = 40;
  const P = (lon, lat) => { const [x, y] = merc(lon, lat); return [(x - x0) * scale + pad, (y - y0) * scale + pad]; };
  const W = (x1 - x0) * scale + 2 * pad, H = (y1 - y0) * scale + 2 * pad;
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W.toFixed(1)} ${H.toFixed(1)}`); svg.setAttribute("id", "map-svg"); svg.setAttribute("role", "img");
  const add = (tag, attrs, parent = svg) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); parent.append(e); return e; };
  if (m.tiles) { // the deployment's own tile server, in the same Web Mercator pixels
    const n = 2 ** zoom;
    for (let tx = Math.floor(x0 * n); tx <= Math.floor(x1 * n); tx++) for (let ty = Math.floor(y0 * n); ty <= Math.floor(y1 * n); ty++) {
      add("image", { href: m.tiles.replace("{z}", zoom).replace("{x}", tx).replace("{y}", ty), x: tx * 256 - x0 * scale + pad, y: ty * 256 - y0 * scale + pad, width: 256, height: 256 });
    }
  }
  for (const g of m.grids) {
    const pts2 = g.area.map(([lon, lat]) => P(lon, lat).map((v) => v.toFixed(1)).join(",")).join(" ");
    add("polygon", { points: pts2, class: "grid-area", "data-grid": g.id });
    const c = g.area.reduce((a, [lon, lat]) => [a[0] + lon / g.area.length, a[1] + lat / g.area.length], [0, 0]);
    const [cx, cy] = P(c[0], c[1]);
    add("text", { x: cx, y: cy, class: "grid-label", "text-anchor": "middle" }).textContent = g.name;
  }
  for (const d of m.devices) {
    const [cx, cy] = P(d.lon, d.lat);
    const dot = add("circle", { cx, cy, r: 7, class: `dev-dot ${d.state}`, "data-device": d.id, "data-lat": d.lat, "data-lon": d.lon });
    add("title", {}, dot).textContent = `${d.name || d.id} · ${d.address || ""} · ${t(d.state)}`;
    dot.addEventListener("click", () => showDevice(d.id));
  }
  for (const c of m.cases) {
    const [cx, cy] = P(c.lon, c.lat);
    const g = add("g", { class: `case-pin ${c.light || "none"}`, "data-case": c.id, "data-lat": c.lat, "data-lon": c.lon, transform: `translate(${cx.toFixed(1)},${cy.toFixed(1)})` });
    add("path", { d: "M0,0 L-9,-20 A10,10 0 1 1 9,-20 Z" }, g);
    add("title", {}, g).textContent = `${c.title} · ${t(c.light || "none")}`;
    g.addEventListener("click", () => openDetail(c.id));
  }
  box.replaceChildren(svg);
  $("#map-legend").textContent = `${t("map_legend")} · ${m.devices.length} / ${m.cases.length}`;
};

function showDevice(id) {
  showTab("devices");
  $("#d-q").value = id;
  LOADERS.devices();
}

// ---- devices ---------------------------------------------------------------------------------------
const DEVICE_FIELDS = ["id", "name", "kind", "grid", "lat", "lon", "address", "vendor", "model", "feed", "gateway", "notes", "camera", "preset"];
LOADERS.devices = async function loadDevices() {
  const q = $("#d-q").value.trim();
  const data = await api(`/api/v1/devices?limit=500${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  fleet.devices = data.devices;
  $("#d-total").textContent = `${t("shown")} ${data.devices.length} ${t("of")} ${data.total}`;
  $("#devices-table tbody").replaceChildren(...data.devices.map((d) => {
    const tr = row(d.id, d.name, t(d.kind), d.grid, d.address, d.lat != null ? `${d.lat}, ${d.lon}` : "—", [d.vendor, d.model].filter(Boolean).join(" "), badge(d.state), guardCell(d));
    tr.dataset.device = d.id;
    tr.addEventListener("click", () => fillDeviceForm(d));
    return tr;
  }));
  if (!$("#d-grid").children.length) $("#d-grid").replaceChildren(...grids().map((g) => option(g.id, `${g.name} (${g.id})`, false)));
};
// 布防/撤防 (cameras and video platforms): what the hub asked, "waiting" until the device confirmed it through
// its gateway, and the button that asks the other state (operators; 撤防 asks first: its alarms open no case).
function guardCell(d) {
  if (d.kind !== "camera" && !d.guard) return t("g_none");
  const now = d.guard || "armed";
  const span = el("span", { class: `guard ${now}`, text: t(`g_${now}`) });
  if (d.guard && d.guard_reported !== d.guard) span.append(el("small", { class: "pending", text: ` (${t("g_pending")})` }));
  if (!state.me?.can_act) return span;
  const next = now === "armed" ? "disarmed" : "armed";
  const button = el("button", { type: "button", class: "guard-toggle", "data-guard": next, text: t(next === "armed" ? "g_arm" : "g_disarm"),
    onclick: async (e) => {
      e.stopPropagation();
      if (next === "disarmed" && !confirm(fill(t("g_confirm_disarm"), { id: d.name || d.id }))) return;
      try {
        await api(`/api/v1/devices/${encodeURIComponent(d.id)}/guard`, { method: "POST", body: JSON.stringify({ state: next }) });
        LOADERS.devices();
      } catch (err) { say("#d-msg", err.message, true); }
    } });
  return el("span", {}, span, " ", button);
}
function fillDeviceForm(d) { for (const f of DEVICE_FIELDS) { const i = $(`#d-${f}`); if (i) i.value = d[f] ?? ""; } }
async function saveDevice(e) {
  e.preventDefault();
  const body = {};
  const was = (fleet.devices || []).find((d) => d.id === $("#d-id").value.trim()) || {};
  for (const f of DEVICE_FIELDS) {
    const input = $(`#d-${f}`);
    if (!input) { if (was[f] != null && was[f] !== "") body[f] = was[f]; continue; } // not on the form (gateway, feed, notes): kept
    const v = input.value.trim(); if (v) body[f] = ["lat", "lon", "preset"].includes(f) ? Number(v) : v;
  }
  if (!body.camera) { body.camera = null; body.preset = null; } // 视频复核: an empty camera unlinks the device
  try {
    await api(`/api/v1/devices/${encodeURIComponent(body.id || "-")}`, { method: "PUT", body: JSON.stringify(body) });
    say("#d-msg", `${body.id} ✓`);
    LOADERS.devices();
  } catch (err) { say("#d-msg", `${t("not_allowed")}: ${err.message}`, true); }
}
async function importDevices(e) {
  const file = e.target.files[0];
  if (!file) return;
  const type = file.name.toLowerCase().endsWith(".xlsx") ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" : "text/csv";
  try {
    const r = await api("/api/v1/devices/import", { method: "POST", body: file, headers: { "Content-Type": type } });
    say("#d-msg", `${t("d_imported")}: +${r.created} / ${r.updated}`);
    LOADERS.devices();
  } catch (err) { say("#d-msg", err.message, true); }
  e.target.value = "";
}
async function exportDevices(format) {
  const res = await api(`/api/v1/devices/export?format=${format}`);
  const a = el("a", { href: URL.createObjectURL(await res.blob()), download: `devices.${format}` });
  document.body.append(a); a.click(); a.remove();
}

// ---- rules -----------------------------------------------------------------------------------------
LOADERS.rules = async function loadRules() {
  const r = await api("/api/v1/rules");
  fleet.versions = r.versions;
  const ed = $("#r-editor");
  if (!ed.value && r.versions.length) { ed.value = (await api(`/api/v1/rules/versions/${r.versions[0].version}`)).text; checkDraft(); }
  const gridOpts = () => grids().map((g) => option(g.id, `${g.name} (${g.id})`, false));
  $("#r-versions tbody").replaceChildren(...r.versions.map((v) => {
    const sel = el("select", { multiple: true, class: "r-grids", "aria-label": t("r_deploy_grids") }, ...gridOpts());
    const acts = el("span", { class: "r-acts" },
      el("button", { type: "button", class: "r-deploy-all", text: t("r_deploy_all"), onclick: () => deploy(v.version, null) }),
      sel,
      el("button", { type: "button", class: "r-deploy-grids", text: t("r_deploy_grids"), onclick: () => deploy(v.version, [...sel.selectedOptions].map((o) => o.value)) }),
      el("button", { type: "button", class: "r-diff", text: t("r_diff"), onclick: () => showDiff(v.version) }),
      el("button", { type: "button", class: "r-load", text: t("r_load"), onclick: async () => { ed.value = (await api(`/api/v1/rules/versions/${v.version}`)).text; checkDraft(); } }));
    const tr = row(`v${v.version}`, v.author, fmtTime(v.created_at), v.note, v.rules, acts);
    tr.dataset.version = v.version;
    return tr;
  }));
  $("#r-deploys tbody").replaceChildren(...r.deploys.slice(0, 20).map((d) => row(`v${d.version}`, d.grids ? d.grids.join(", ") : t("r_everywhere"), d.actor, fmtTime(d.at), d.note)));
  renderAgents($("#r-agents tbody"), r.agents);
  const caps = await api("/api/v1/rules/captures");
  $("#r-capture").replaceChildren(...caps.map((c) => option(c, c, false)));
};
function checkDraft() {
  clearTimeout(fleet.checkTimer);
  fleet.checkTimer = setTimeout(async () => {
    const text = $("#r-editor").value;
    try {
      const r = await api("/api/v1/rules/check", { method: "POST", body: JSON.stringify({ text }) });
      fleet.lastCheck = r;
      $("#r-problems").replaceChildren(...r.problems.map((p) => el("li", { text: p })));
      say("#r-status", r.ok ? `${t("r_check_ok")} · ${r.rules} ${t("r_rules")}` : `✗ ${r.problems.length}`, !r.ok);
      $("#r-save").disabled = !r.ok;
    } catch (err) { say("#r-status", err.message, true); }
  }, 300);
}
async function saveDraft() {
  try {
    const v = await api("/api/v1/rules", { method: "POST", body: JSON.stringify({ text: $("#r-editor").value, note: $("#r-note").value }) });
    say("#r-msg", `v${v.version} ✓`);
    $("#r-note").value = "";
    LOADERS.rules();
  } catch (err) { say("#r-msg", `${t("not_allowed")}: ${err.message}`, true); }
}
async function deploy(version, gridsList) {
  if (gridsList && !gridsList.length) { say("#r-msg", t("r_deploy_grids"), true); return; }
  try {
    await api("/api/v1/rules/deploy", { method: "POST", body: JSON.stringify({ version, grids: gridsList }) });
    say("#r-msg", `v${version} → ${gridsList ? gridsList.join(", ") : t("r_everywhere")}`);
    LOADERS.rules();
  } catch (err) { say("#r-msg", `${t("not_allowed")}: ${err.message}`, true); }
}
async function showDiff(version) {
  const res = await api(`/api/v1/rules/versions/${version}/diff`);
  $("#r-diff").textContent = await res.text();
}
async function backtest() {
  try {
    const r = await api("/api/v1/rules/backtest", { method: "POST", body: JSON.stringify({ text: $("#r-editor").value, capture: $("#r-capture").value }) });
    $("#r-diff").textContent = `${r.messages} → ${r.alerts}\n` + Object.entries(r.per_rule).map(([k, v]) => `${k}: ${v}`).join("\n");
  } catch (err) { say("#r-msg", err.message, true); }
}

// ---- agents ----------------------------------------------------------------------------------------
function renderAgents(tbody, list) {
  tbody.replaceChildren(...list.map((a) => {
    const tr = row(a.id, badge(a.state), a.grids.join(", ") || "*", a.rule_version ? `v${a.rule_version}` : "—",
      a.wanted_version ? `v${a.wanted_version}` : "—", fmtTime(a.last_seen), a.outbox_depth, fmtTime(a.oldest_unsent),
      a.broker, a.devices, a.problem || "");
    tr.dataset.agent = a.id; tr.dataset.version = a.rule_version ?? "";
    return tr;
  }));
}
// ---- notices (administrators): to whom, on which channel, delivered or failed and why ---------------
LOADERS["notices-tab"] = async function loadNotices() {
  const st = $("#n-state").value;
  const list = await api(`/api/v1/notices?limit=500${st ? `&state=${st}` : ""}`);
  $("#n-table tbody").replaceChildren(...list.map((n) => {
    const link = n.case_id ? el("a", { href: "#", text: n.case_id.slice(-8), onclick: (e) => { e.preventDefault(); openDetail(n.case_id); } }) : "—";
    const stateWord = { delivered: t("nr_delivered"), failed: t("nr_failed"), stopped: t("n_stopped"), pending: t("n_pending"), sending: t("n_pending") }[n.state];
    const tr = row(fmtTime(n.created_at), link, n.title, n.channel, `${n.recipient || "—"} ${n.target}`, stateWord, n.attempts, n.error);
    tr.dataset.state = n.state;
    return tr;
  }));
};
$("#n-state").addEventListener("change", () => LOADERS["notices-tab"]());

LOADERS.agents = async function loadAgents() { renderAgents($("#agents-table tbody"), await api("/api/v1/agents")); };

// ---- maintenance -----------------------------------------------------------------------------------
LOADERS.maint = async function loadMaint() {
  const list = await api("/api/v1/maintenance");
  $("#m-table tbody").replaceChildren(...list.map((w) => {
    const rec = w.recurrence ? ` · ${w.recurrence.days.join(",")} ${w.recurrence.start}-${w.recurrence.end}` : "";
    const stop = el("button", { type: "button", text: t("m_cancel"), onclick: async () => { await api(`/api/v1/maintenance/${w.id}/cancel`, { method: "POST" }); LOADERS.maint(); } });
    return row(t(w.scope), w.target, w.reason, `${fmtTime(w.starts_at)} – ${w.ends_at ? fmtTime(w.ends_at) : "∞"}${rec}`, w.active ? t("m_active") : t("m_waiting"), w.held, state.me.can_act ? stop : "");
  }));
};
async function addWindow(e) {
  e.preventDefault();
  const local = (v) => (v ? new Date(v).toISOString() : null);
  const body = { scope: $("#m-scope").value, target: $("#m-target").value.trim(), reason: $("#m-reason").value.trim(),
    starts_at: local($("#m-start").value) || new Date().toISOString(), ends_at: local($("#m-end").value) };
  if ($("#m-repeat").checked) body.recurrence = { days: $("#m-days").value.split(/[ ,]+/).filter(Boolean).map(Number), start: $("#m-from").value, end: $("#m-to").value };
  try { await api("/api/v1/maintenance", { method: "POST", body: JSON.stringify(body) }); say("#m-msg", "✓"); LOADERS.maint(); }
  catch (err) { say("#m-msg", `${t("not_allowed")}: ${err.message}`, true); }
}

// ---- wiring ----------------------------------------------------------------------------------------
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
$("#d-q").addEventListener("input", () => { clearTimeout(fleet.qTimer); fleet.qTimer = setTimeout(LOADERS.devices, 250); });
$("#d-form").addEventListener("submit", saveDevice);
$("#d-file").addEventListener("change", importDevices);
$("#d-csv").addEventListener("click", () => exportDevices("csv"));
$("#d-xlsx").addEventListener("click", () => exportDevices("xlsx"));
$("#r-editor").addEventListener("input", checkDraft);
$("#r-save").addEventListener("click", saveDraft);
$("#r-backtest").addEventListener("click", backtest);
$("#m-form").addEventListener("submit", addWindow);
