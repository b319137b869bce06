// The agent console page: sign in, receive screen-pops over MQTT, save the ticket, ask for a restriction,
// hand the caller to a linked centre (blind or three-way).
// The current call's pop is also fetched from the gateway on page load and on every broker (re)connect, so a
// page that was away when the pop went out still shows it. Tickets are addressed by their public id only.
// Everything from the network is rendered with textContent, never innerHTML: transcripts are callers' words.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_POPS = 50;
  const MAX_SEEN = 1000;
  const TYPE_NAMES = { consultation: "咨询", help: "求助", complaint: "投诉", report: "举报", suggestion: "建议" };
  const STATUS_TEXT = {
    connecting: "连接中……", connected: "已连接", reconnecting: "已断开，正在重连", refused: "连接被拒绝",
    closed: "已断开", "signed-out": "未登录", "password-needed": "实时弹屏未连接",
  };
  const OUTCOME_NAMES = {
    blocked: "已拦截", queued: "排队中", answered: "已接听", abandoned: "未接通挂机", ivr: "自助服务", failed: "失败",
  };
  const TICKET_STATUS_NAMES = { draft: "草稿", saved: "已保存" };
  const TICKET_FIELDS = {
    type: "ticket-type", category: "ticket-category", unit: "ticket-unit", address: "ticket-address",
    callback_number: "ticket-callback", due: "ticket-due", summary: "ticket-summary",
  };

  let agent = null;
  let broker = null;          // ConsoleBroker connection, while signed in with the password
  let session = null;         // {agent, role, ws_url, topic} from the gateway
  const pops = [];            // newest first
  const seen = new Set();     // screen-pop ids already shown (delivery is at-least-once)
  let current = null;         // the pop whose ticket is in the form

  function setStatus(state, detail) {
    const el = $("status");
    el.dataset.state = state;
    let text = STATUS_TEXT[state] || state;
    if (detail) text += `：${detail}`;
    el.textContent = text;
  }

  async function api(method, path, body) {
    const result = await ConsoleApi.request(method, path, body);
    if (result.status === 401 && agent !== null && path !== "/api/login") signOut("登录已过期，请重新登录");
    return result;
  }

  function errorText(result) {
    const d = result.data || {};
    const field = FIELD_NAMES[d.field] || d.field;
    return field ? `${field}：${d.reason || result.status}` : `错误 ${result.status}`;
  }
  const FIELD_NAMES = {
    type: "诉求类型", category: "分类", unit: "承办单位", address: "地址", callback_number: "回拨号码",
    due: "办理时限", summary: "诉求内容", reason: "原因", number: "来电号码", ticket: "工单", session: "登录",
    centre: "联动单位", mode: "转接方式", call: "通话", transfer: "转接",
  };
  const TRANSFER_DONE = { blind: (label) => `已转接 ${label}`, threeway: (label) => `已转接 ${label}（三方通话）` };

  // -- sign-in ------------------------------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const agentName = $("login-agent").value.trim();
    const password = $("login-password").value;
    $("login-error").textContent = "";
    $("login-submit").disabled = true;
    try {
      const result = await api("POST", "/api/login", { agent: agentName, password });
      if (!result.ok) {
        $("login-error").textContent = result.status === 401 ? "坐席工号或密码错误" : errorText(result);
        return;
      }
      $("login-password").value = "";
      enterWorkspace(result.data);
      connectBroker(password);
    } catch (e) {
      $("login-error").textContent = "无法连接工作台服务";
    } finally {
      $("login-submit").disabled = false;
    }
  }

  // A page loaded (or reloaded) within a signed-in session shows the workspace and the current call's pop at
  // once; the broker needs the password again, which the page never stores.
  async function resumeSession() {
    let result;
    try { result = await api("GET", "/api/session"); } catch (e) { return; }
    if (!result.ok || agent !== null) return;
    enterWorkspace(result.data);
    setStatus("password-needed");
    $("reconnect-form").hidden = false;
    fetchCurrentPop();
  }

  async function reconnectWithPassword(event) {
    event.preventDefault();
    const password = $("reconnect-password").value;
    $("reconnect-error").textContent = "";
    $("reconnect-submit").disabled = true;
    try {
      const result = await api("POST", "/api/login", { agent, password });
      if (!result.ok) {
        $("reconnect-error").textContent = result.status === 401 ? "密码错误" : errorText(result);
        return;
      }
      $("reconnect-password").value = "";
      $("reconnect-form").hidden = true;
      session = result.data;
      connectBroker(password);
    } catch (e) {
      $("reconnect-error").textContent = "无法连接工作台服务";
    } finally {
      $("reconnect-submit").disabled = false;
    }
  }

  function enterWorkspace(details) {
    session = details;
    agent = details.agent;
    $("signed-in-agent").textContent = details.role === "supervisor" ? `班长 ${agent}` : `坐席 ${agent}`;
    $("login-section").hidden = true;
    $("workspace").hidden = false;
    $("logout").hidden = false;
    $("lookup-form").hidden = details.role !== "supervisor";
    $("supervisor-link").hidden = details.role !== "supervisor";
    loadCentres();
    // aftercall.js (call-backs, recordings) follows the session
    document.dispatchEvent(new CustomEvent("console:signed-in", { detail: { agent, role: details.role } }));
  }

  function connectBroker(password) {
    if (broker) broker.stop();
    // The broker password lives only in this closure, for reconnects; it is not stored anywhere.
    broker = ConsoleBroker.connect({
      url: session.ws_url,
      username: agent,
      password,
      topic: session.topic,
      onStatus: setStatus,
      onMessage: receivePop,
      onSubscribed: fetchCurrentPop,
    });
  }

  function signOut(message) {
    if (broker) broker.stop();
    broker = null;
    session = null;
    agent = null;
    pops.length = 0;
    seen.clear();
    current = null;
    renderPops();
    $("pop-view").hidden = true;
    $("no-pop").hidden = false;
    $("workspace").hidden = true;
    $("reconnect-form").hidden = true;
    $("lookup-form").hidden = true;
    $("logout").hidden = true;
    $("login-section").hidden = false;
    $("signed-in-agent").textContent = "";
    document.dispatchEvent(new CustomEvent("console:signed-out"));
    setStatus("signed-out");
    $("login-error").textContent = message || "";
  }

  async function logout() {
    await api("POST", "/api/logout", {}).catch(() => {});
    signOut();
  }

  // -- screen-pops --------------------------------------------------------------------------------------------

  // What was published while the page was away (or before it loaded) comes from the gateway; a pop the page
  // already has is dropped by its id, like a repeat from the broker.
  async function fetchCurrentPop() {
    const wanted = agent;
    let result;
    try { result = await api("GET", "/api/screenpop"); } catch (e) { return; }
    if (result.ok && result.data && result.data.pop && agent === wanted) showNewPop(result.data.pop);
  }

  function receivePop(topic, text) {
    let pop;
    try { pop = JSON.parse(text); } catch (e) { console.warn("screen-pop is not JSON"); return; }
    showNewPop(pop);
  }

  // A supervisor opens any ticket by its number (the gateway audits it); it is listed like a pop.
  async function lookUpTicket(event) {
    event.preventDefault();
    const number = $("lookup-number").value.trim();
    $("lookup-status").textContent = "";
    let result;
    try { result = await api("GET", `/api/tickets?number=${encodeURIComponent(number)}`); } catch (e) {
      $("lookup-status").textContent = "查询失败：网络错误";
      return;
    }
    if (!result.ok || !result.data || !result.data.pop) {
      $("lookup-status").textContent = result.status === 404 ? "没有这个工单" : `查询失败：${errorText(result)}`;
      return;
    }
    const known = pops.find((p) => p.id === result.data.pop.id);
    if (known) reopen(known); else showNewPop(result.data.pop);
  }

  function showNewPop(pop) {
    if (!pop || typeof pop.id !== "string" || !pop.ticket) return;
    // The broker's ACL is the guard; this only keeps a mis-addressed pop off the screen.
    if (pop.agent !== undefined && pop.agent !== agent) return;
    if (seen.has(pop.id)) return;
    seen.add(pop.id);
    if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);  // Sets iterate oldest first
    // Newest first. A fetched pop can be older than one that came live meanwhile: it is listed, not put in front.
    const at = Date.parse(pop.created_at) || 0;
    const index = pops.findIndex((p) => (Date.parse(p.created_at) || 0) <= at);
    const position = index === -1 ? pops.length : index;
    pops.splice(position, 0, pop);
    if (pops.length > MAX_POPS) pops.length = MAX_POPS;
    renderPops();
    if (position === 0) showPop(pop);
  }

  function renderPops() {
    const list = $("pops");
    list.replaceChildren();
    $("pops-empty").hidden = pops.length > 0;
    for (const pop of pops) {
      const item = document.createElement("li");
      item.dataset.popId = pop.id;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "pop" + (current && current.id === pop.id ? " current" : "");
      const time = document.createElement("span");
      time.className = "time";
      time.textContent = shortTime(pop.created_at);
      const who = document.createElement("span");
      who.textContent = `${displayNumber(pop.caller_number)} · ${TYPE_NAMES[pop.ticket.type] || "未分类"}`;
      const id = document.createElement("span");
      id.className = "muted";
      id.textContent = pop.ticket.id;
      button.append(time, who, id);
      button.addEventListener("click", () => reopen(pop));
      item.append(button);
      list.append(item);
    }
  }

  async function reopen(pop) {
    showPop(pop);
    // The pop carries the ticket as it was at the call; the store has what was saved since.
    const result = await api("GET", `/api/tickets/${encodeURIComponent(pop.ticket.public_id)}`);
    if (result.ok && current && current.id === pop.id) fillTicket(result.data);
  }

  function showPop(pop) {
    current = pop;
    $("no-pop").hidden = true;
    $("pop-view").hidden = false;
    $("caller-number").textContent = displayNumber(pop.caller_number);
    $("ivr-path").textContent = (pop.ivr_path || []).join(" → ") || "—";
    $("pop-time").textContent = fullTime(pop.created_at);
    $("pop-reason").hidden = !pop.reason;
    $("pop-reason").textContent = pop.reason ? `转接原因：${pop.reason}` : "";
    $("pop-emergency").hidden = !pop.ticket.emergency;
    $("pop-emergency").textContent = pop.ticket.emergency ? `紧急事项：${pop.ticket.emergency}` : "";
    $("transcript").textContent = pop.transcript || "（无转写）";
    $("save-status").textContent = "";
    $("abusive-status").textContent = "";
    $("abusive-reason").value = "";
    $("transfer-status").textContent = "";
    fillTicket(pop.ticket);
    renderHistory(pop.history || {});
    renderPops();
  }

  function fillTicket(ticket) {
    $("ticket-id").textContent = ticket.id;
    const check = new Set(ticket.check || []);
    const scores = ticket.scores || {};
    for (const [name, id] of Object.entries(TICKET_FIELDS)) {
      const value = ticket[name];
      if (value === null || value === undefined) $(id).value = "";
      else $(id).value = name === "callback_number" ? displayNumber(value) : String(value);
      markConfidence($(id), name, check.has(name), scores[name]);
    }
    if (!TYPE_NAMES[ticket.type]) $("ticket-type").value = "";
  }

  // A pre-filled field the speech recognition was unsure of is marked for the agent to check; the title says how
  // sure it was and what came second. Editing the field clears the mark.
  function markConfidence(input, name, low, score) {
    input.classList.toggle("check", low);
    input.dataset.check = low ? "1" : "";
    if (!low || !score) { input.removeAttribute("title"); return; }
    let text = `识别把握 ${Math.round(Number(score.score) * 100)}%，请核对`;
    if (score.runner_up) {
      const second = name === "type" ? (TYPE_NAMES[score.runner_up] || score.runner_up) : score.runner_up;
      text += `（次选：${second} ${Math.round(Number(score.runner_up_score) * 100)}%）`;
    }
    input.title = text;
    input.addEventListener("input", () => { input.classList.remove("check"); input.dataset.check = ""; },
                           { once: true });
  }

  function renderHistory(history) {
    fillList("history-calls", history.calls, (c) =>
      `${fullTime(c.started_at)} ${TYPE_NAMES[c.request_type] || ""} ${OUTCOME_NAMES[c.outcome] || c.outcome || ""}`
        .trim());
    fillList("history-tickets", history.tickets, (t) =>
      `${t.id} ${TYPE_NAMES[t.type] || ""} ${t.category || ""} ${TICKET_STATUS_NAMES[t.status] || t.status || ""}`
        .trim());
    // the pop lists only the latest of a frequent caller's calls and tickets; the totals say how many in all
    showTotal("history-calls-total", (history.calls || []).length, history.calls_total);
    showTotal("history-tickets-total", (history.tickets || []).length, history.tickets_total);
    fillList("history-restrictions", history.restrictions, (r) => {
      const state = r.active ? "生效中" : (r.lifted_at ? "已解除" : "已到期");
      return `${fullTime(r.decided_at)} 至 ${fullTime(r.until)} ${state}：${r.reason || ""}`;
    });
  }

  function showTotal(id, shown, total) {
    $(id).textContent = Number(total) > shown ? `近90日共 ${Number(total)} 条，显示最近 ${shown} 条` : "";
  }

  function fillList(id, items, describe) {
    const list = $(id);
    list.replaceChildren();
    if (!items || items.length === 0) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "无";
      list.append(empty);
      return;
    }
    for (const item of items) {
      const li = document.createElement("li");
      li.textContent = describe(item);
      list.append(li);
    }
  }

  // -- ticket actions -----------------------------------------------------------------------------------------

  async function saveTicket(event) {
    event.preventDefault();
    if (!current) return;
    const body = {};
    for (const [name, id] of Object.entries(TICKET_FIELDS)) {
      const value = $(id).value;
      if (name === "type" && value === "") continue;
      if (name === "due" && value === "") continue;
      body[name] = value;
    }
    const ticketId = current.ticket.public_id;
    $("save").disabled = true;
    $("save-status").textContent = "保存中……";
    try {
      const result = await api("PUT", `/api/tickets/${encodeURIComponent(ticketId)}`, body);
      $("save-status").textContent = result.ok ? "已保存" : `保存失败：${errorText(result)}`;
      if (result.ok && current && current.ticket.public_id === ticketId) fillTicket(result.data);
    } catch (e) {
      $("save-status").textContent = "保存失败：网络错误";
    } finally {
      $("save").disabled = false;
    }
  }

  async function markAbusive(event) {
    event.preventDefault();
    if (!current) return;
    const reason = $("abusive-reason").value.trim();
    if (!reason) { $("abusive-status").textContent = "请填写原因"; return; }
    $("mark-abusive").disabled = true;
    try {
      const ticketId = current.ticket.public_id;
      const result = await api("POST", `/api/tickets/${encodeURIComponent(ticketId)}/abusive`, { reason });
      $("abusive-status").textContent = result.ok ? "已提交，待班长确认" : `提交失败：${errorText(result)}`;
    } catch (e) {
      $("abusive-status").textContent = "提交失败：网络错误";
    } finally {
      $("mark-abusive").disabled = false;
    }
  }

  // -- transfer to a linked centre ---------------------------------------------------------------------------

  async function loadCentres() {
    const select = $("transfer-centre");
    let centres = [];
    try {
      const result = await api("GET", "/api/centres");
      if (result.ok && result.data && Array.isArray(result.data.centres)) centres = result.data.centres;
    } catch (e) { centres = []; }
    select.replaceChildren();
    if (centres.length === 0) {
      const none = document.createElement("option");
      none.value = "";
      none.textContent = "（未配置联动单位）";
      select.append(none);
    }
    for (const centre of centres) {
      const option = document.createElement("option");
      option.value = centre.name;
      option.textContent = centre.label || centre.name;
      select.append(option);
    }
    const usable = centres.length > 0;
    $("transfer-blind").disabled = !usable;
    $("transfer-threeway").disabled = !usable;
  }

  async function transfer(mode) {
    if (!current) return;
    const select = $("transfer-centre");
    const centre = select.value;
    if (!centre) { $("transfer-status").textContent = "请选择联动单位"; return; }
    const label = select.selectedOptions.length ? select.selectedOptions[0].textContent : centre;
    const ticketId = current.ticket.public_id;
    const buttons = [$("transfer-blind"), $("transfer-threeway")];
    buttons.forEach((b) => { b.disabled = true; });
    $("transfer-status").textContent = "转接中……";
    try {
      const result = await api("POST", `/api/tickets/${encodeURIComponent(ticketId)}/transfer`, { centre, mode });
      if (!current || current.ticket.public_id !== ticketId) return;
      if (result.ok) $("transfer-status").textContent = TRANSFER_DONE[mode](label);
      else if (result.status === 409 && result.data && result.data.reason) {
        $("transfer-status").textContent = `转接失败：${result.data.reason}`;
      } else if (result.status === 503) $("transfer-status").textContent = "转接失败：本工作台未开通转接";
      else $("transfer-status").textContent = `转接失败：${errorText(result)}`;
    } catch (e) {
      $("transfer-status").textContent = "转接失败：网络错误";
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // -- formatting ---------------------------------------------------------------------------------------------

  const timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const dateTimeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false,
  });

  // Agents dial and read numbers the domestic way: 13800138000, 07592345678; foreign ones stay in E.164.
  function displayNumber(e164) {
    if (!e164) return "未知号码";
    if (!e164.startsWith("+86")) return e164;
    const national = e164.slice(3);
    return national.length === 11 && national.startsWith("1") ? national : "0" + national;
  }

  function parse(text) {
    const d = text ? new Date(text) : null;
    return d && !isNaN(d) ? d : null;
  }
  function shortTime(text) { const d = parse(text); return d ? timeFormat.format(d) : ""; }
  function fullTime(text) { const d = parse(text); return d ? dateTimeFormat.format(d) : (text || ""); }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", signIn);
    $("reconnect-form").addEventListener("submit", reconnectWithPassword);
    $("lookup-form").addEventListener("submit", lookUpTicket);
    $("ticket-form").addEventListener("submit", saveTicket);
    $("abusive-form").addEventListener("submit", markAbusive);
    $("logout").addEventListener("click", logout);
    $("transfer-blind").addEventListener("click", () => transfer("blind"));
    $("transfer-threeway").addEventListener("click", () => transfer("threeway"));
    setStatus("signed-out");
    resumeSession();
  });
})();
