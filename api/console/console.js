// The operator console: reads the API with the key given (kept in this browser only).
"use strict";

const STAGES = ["potential", "new", "active", "silent", "churned", "none"];
const STAGE_COLORS = ["#8ab4f8", "#34a853", "#188038", "#f9ab00", "#d93025", "#9aa0a6"];
const RATIOS = new Set(["open_rate", "conversion", "retention_d1", "retention_d7",
  "retention_d30", "repurchase", "top15_share"]);

const TEXT = {
  en: {
    title: "Lifecycle console", key: "API key", connect: "Connect", stages: "Stages now",
    total: "Total users", flows: "Stage changes, last 30 days", from: "From", to: "To",
    users: "Users", kpis: "KPIs against targets, last 30 days", kpi: "KPI", value: "Value",
    target: "Target", rooms: "Live rooms, last 3 hours", room: "Room", viewers: "Viewers",
    negative: "Negative comments", watch: "Watch time per viewer", gmv: "GMV",
    alerts: "Room alerts", feed: "Triggers, live", lookup: "User lookup", find: "Find",
    at: "At", models: "Model quality", met: "met", missed: "below target", none: "no stage",
    potential: "potential", new: "new", active: "active", silent: "silent",
    churned: "churned", unknown: "unknown user", connected: "connected",
    open_rate: "Open rate", interaction_frequency: "Interactions per user per month",
    conversion: "Conversion", retention_d1: "D1 retention", retention_d7: "D7 retention",
    retention_d30: "D30 retention", repurchase: "Repurchase within 90 days",
    repurchase_cycle_days: "Repurchase cycle (days)", refunds: "Refunds", orders: "Orders",
    aov: "AOV", arpu: "ARPU", arppu: "ARPPU", top15_share: "Top 15% share of GMV",
    ltv: "LTV", stage: "Stage", order_count: "Orders", monetary: "Net paid",
    segment: "Segment", churn_probability: "Churn probability", p_alive: "P(alive)",
    last_event_at: "Last event", churn_auc: "Churn ROC AUC", churn_ready: "Churn model ready",
    churn_labels: "Churn labels", holdout_mae: "BG/NBD holdout error per buyer",
    rfm_version: "RFM scale", btyd: "BG/NBD (r, alpha, a, b)",
    no_models: "no models published yet: the worker refits on a timer",
    bad_key: "unknown API key", no_read: "this key may not read (a producer key?)",
  },
  zh: {
    title: "用户生命周期控制台", key: "API 密钥", connect: "连接", stages: "当前阶段分布",
    total: "用户总数", flows: "近 30 天阶段流转", from: "从", to: "到", users: "用户数",
    kpis: "近 30 天 KPI 与目标", kpi: "指标", value: "数值", target: "目标",
    rooms: "近 3 小时直播间", room: "直播间", viewers: "观众", negative: "负面评论占比",
    watch: "人均观看时长", gmv: "成交额", alerts: "直播间告警", feed: "实时触发",
    lookup: "用户查询", find: "查询", at: "时间", models: "模型质量", met: "达标",
    missed: "未达标", none: "无阶段", potential: "潜在", new: "新客", active: "活跃",
    silent: "沉默", churned: "流失", unknown: "未知用户", connected: "已连接",
    open_rate: "触达打开率", interaction_frequency: "人均月互动次数", conversion: "转化率",
    retention_d1: "次日留存", retention_d7: "7 日留存", retention_d30: "30 日留存",
    repurchase: "90 天复购率", repurchase_cycle_days: "复购周期（天）", refunds: "退款",
    orders: "订单数", aov: "客单价", arpu: "ARPU", arppu: "ARPPU",
    top15_share: "前 15% 用户成交占比", ltv: "用户终身价值", stage: "阶段",
    order_count: "订单数", monetary: "净支付", segment: "分群",
    churn_probability: "流失概率", p_alive: "存活概率", last_event_at: "最近事件",
    churn_auc: "流失模型 ROC AUC", churn_ready: "流失模型就绪", churn_labels: "流失标签数",
    holdout_mae: "BG/NBD 留出误差（每买家）", rfm_version: "RFM 分档", btyd: "BG/NBD 参数",
    no_models: "尚未发布模型：worker 定时重新拟合",
    bad_key: "API 密钥无效", no_read: "该密钥无读取权限（生产者密钥？）",
  },
};

let lang = localStorage.getItem("lifecycle-lang") || "en";
let key = localStorage.getItem("lifecycle-key") || "dev";
let stageChart = null;
let streamAbort = null;
let requests = new AbortController();  // this connection's requests; a new key aborts them

const $ = (id) => document.getElementById(id);
const t = (name) => TEXT[lang][name] ?? name;
const locale = () => (lang === "zh" ? "zh-CN" : "en-GB");
const when = (iso) => (iso ? new Date(iso).toLocaleString(locale()) : "–");

function percent(value) {
  return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%";
}

function formatValue(name, value) {
  if (value === null || value === undefined) return "–";
  if (RATIOS.has(name)) return percent(value);
  if (name === "orders") return String(Math.round(value));
  return value.toLocaleString(locale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function row(cells, testid) {
  const tr = document.createElement("tr");
  if (testid) tr.dataset.testid = testid;
  cells.forEach((c) => tr.appendChild(c));
  return tr;
}

function setStatus(text, error) {
  const status = $("status");
  status.textContent = text;
  status.className = error ? "error" : "";
}

async function api(path) {
  const answer = await fetch(path, { headers: { "X-API-Key": key }, signal: requests.signal });
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({}));
    const error = new Error(`${answer.status}: ${JSON.stringify(body.detail ?? body)}`);
    error.status = answer.status;
    throw error;
  }
  return answer.json();
}

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = lang === "zh" ? "English" : "中文";
}

async function showStages() {
  const counts = await api("/v1/segments");
  const rows = $("stage-rows");
  rows.replaceChildren(...STAGES.map((stage) => row(
    [cell(t(stage)), cell(String(counts.by_stage[stage] ?? 0), "num")], `stage-${stage}`)));
  $("total-users").textContent = String(counts.total_users);
  const data = STAGES.map((s) => counts.by_stage[s] ?? 0);
  if (stageChart === null) {
    stageChart = new Chart($("stage-chart"), {
      type: "doughnut",
      data: { labels: STAGES.map(t), datasets: [{ data, backgroundColor: STAGE_COLORS }] },
      options: { animation: false, plugins: { legend: { position: "right" } } },
    });
  } else {
    stageChart.data.labels = STAGES.map(t);
    stageChart.data.datasets[0].data = data;
    stageChart.update();
  }
}

async function showFlows() {
  const answer = await api("/v1/flows");
  $("flow-rows").replaceChildren(...answer.flows.slice(0, 12).map((f) => row(
    [cell(t(f.from_stage ?? "none")), cell(t(f.to_stage)), cell(String(f.users), "num")])));
}

async function showKpis() {
  const to = new Date();
  const from = new Date(to.getTime() - 3 * 3600 * 1000);
  const month = await api("/v1/kpis");
  $("kpi-rows").replaceChildren(...Object.entries(month.kpis).map(([name, kpi]) => {
    const value = cell(formatValue(name, kpi.value), "num");
    value.dataset.value = kpi.value === null ? "" : String(kpi.value);
    const target = cell(kpi.target === null ? "" : "> " + formatValue(name, kpi.target), "num");
    const verdict = kpi.met === null ? cell("") : cell(t(kpi.met ? "met" : "missed"),
      kpi.met ? "met" : "missed");
    return row([cell(t(name)), value, target, verdict], `kpi-${name}`);
  }));
  const recent = await api(`/v1/kpis?from=${encodeURIComponent(from.toISOString())}` +
    `&to=${encodeURIComponent(to.toISOString())}`);
  $("room-rows").replaceChildren(...recent.rooms.map((r) => row([
    cell(r.room_id), cell(String(r.viewers), "num"),
    cell(percent(r.negative_comment_share), "num"),
    cell(r.avg_watch_seconds === null ? "–" : `${Math.round(r.avg_watch_seconds)} s`, "num"),
    cell(formatValue("gmv", r.gmv), "num")], `room-${r.room_id}`)));
}

async function showModels() {
  let models;
  try {
    models = await api("/v1/models");
  } catch (error) {
    if (error.status === 404) {  // nothing published yet
      const dd = document.createElement("dd");
      dd.textContent = t("no_models");
      $("model-facts").replaceChildren(dd);
      return;
    }
    throw error;
  }
  const churn = models.churn ?? {};
  const holdout = models.refit?.diagnostics?.holdout ?? {};
  const b = models.btyd ?? {};
  const facts = [
    ["churn_ready", churn.ready === undefined ? "–"
      : churn.ready ? "✓" : `✗ ${(churn.not_ready ?? []).join("; ")}`],
    ["churn_auc", churn.roc_auc == null ? "–" : churn.roc_auc.toFixed(3)],
    ["churn_labels", String(churn.labels ?? "–")],
    ["holdout_mae", holdout.mean_absolute_error == null ? "–" : holdout.mean_absolute_error.toFixed(3)],
    ["rfm_version", models.versions?.rfm ?? "–"],
    ["btyd", b.r == null ? "–" : [b.r, b.alpha, b.a, b.b].map((x) => x.toFixed(3)).join(", ")],
  ];
  $("model-facts").replaceChildren(...facts.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = t(name);
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset.testid = `model-${name}`;
    return [dt, dd];
  }));
}

async function lookup() {
  const id = $("user-id").value.trim();
  if (!id) return;
  const box = $("user");
  try {
    const [doc, history] = await Promise.all([
      api(`/v1/users/${encodeURIComponent(id)}`),
      api(`/v1/users/${encodeURIComponent(id)}/history`),
    ]);
    const fields = [
      ["stage", t(doc.stage ?? "none")], ["order_count", String(doc.order_count)],
      ["monetary", doc.monetary.toFixed(2)], ["segment", doc.rfm?.segment ?? "–"],
      ["churn_probability", doc.churn_probability == null ? "–" : doc.churn_probability.toFixed(3)],
      ["p_alive", doc.purchase?.p_alive == null ? "–" : doc.purchase.p_alive.toFixed(3)],
      ["last_event_at", when(doc.last_event_at)],
    ];
    const dl = document.createElement("dl");
    fields.forEach(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = t(name);
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.dataset.testid = `user-${name}`;
      dl.append(dt, dd);
    });
    box.replaceChildren(dl);
    $("history").replaceChildren(...history.history.map((h) => row(
      [cell(t(h.from_stage ?? "none")), cell(t(h.to_stage)), cell(when(h.at))], "history-row")));
  } catch (error) {
    box.textContent = error.status === 404 ? t("unknown") : error.message;
    $("history").replaceChildren();
  }
}

function addTrigger(trigger) {
  const li = document.createElement("li");
  li.dataset.testid = "trigger";
  li.dataset.rule = trigger.rule;
  li.textContent = `${when(trigger.fired_at)} ${trigger.rule} → ${trigger.subject_id} (${trigger.action})`;
  const list = $("triggers");
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
  if (trigger.subject_type === "room") {
    const alert = li.cloneNode(true);
    alert.dataset.testid = "alert";
    const alerts = $("alerts");
    alerts.prepend(alert);
    while (alerts.children.length > 20) alerts.lastChild.remove();
  }
}

// Server-sent events read with fetch (EventSource cannot send the key header).
async function follow() {
  if (streamAbort) streamAbort.abort();
  streamAbort = new AbortController();
  const answer = await fetch("/v1/triggers/stream", {
    headers: { "X-API-Key": key }, signal: streamAbort.signal });
  if (!answer.ok) throw new Error(`trigger stream: ${answer.status}`);
  const reader = answer.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = message.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim()).join("\n");
      if (data) addTrigger(JSON.parse(data));
    }
  }
}

async function refresh() {
  const mine = requests;
  try {
    await Promise.all([showStages(), showFlows(), showKpis(), showModels()]);
    setStatus(`${t("connected")} · ${new Date().toLocaleTimeString(locale())}`, false);
  } catch (error) {
    if (mine !== requests || error.name === "AbortError") return;
    if (error.status === 401 || error.status === 403) {  // nothing stale stays on screen
      ["stage-rows", "flow-rows", "kpi-rows", "room-rows", "model-facts", "triggers", "alerts"]
        .forEach((id) => $(id).replaceChildren());
      $("total-users").textContent = "";
      setStatus(t(error.status === 401 ? "bad_key" : "no_read"), true);
      return;
    }
    setStatus(error.message, true);
  }
}

function connect() {
  requests.abort();
  requests = new AbortController();
  $("triggers").replaceChildren();  // the stream sends the feed again from its start
  $("alerts").replaceChildren();
  key = $("key").value || key;
  localStorage.setItem("lifecycle-key", key);
  refresh();
  follow().catch((error) => {
    if (error.name !== "AbortError" && !$("status").classList.contains("error")) {
      setStatus(error.message, true);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = key;
  translate();
  $("connect").addEventListener("click", connect);
  $("find").addEventListener("click", lookup);
  $("user-id").addEventListener("keydown", (e) => { if (e.key === "Enter") lookup(); });
  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh" : "en";
    localStorage.setItem("lifecycle-lang", lang);
    translate();
    refresh();
  });
  connect();
  setInterval(refresh, 10000);
});
