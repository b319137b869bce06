// After the call, on the agent console: the call-back tasks of dissatisfied callers (start the call-back: your
// phone rings first, then the caller's; close it, with the ticket's one redo), the recordings of your calls (a
// supervisor: every call, and the pending restriction requests with their call's recording as evidence).
// console.js tells this file who signed in (console:signed-in / console:signed-out). Everything from the network
// is rendered with textContent, never innerHTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const OUTCOMES = { reached: "已接通", no_answer: "无人接听", busy: "忙", failed: "失败" };
  const REASONS = {
    intake_rating_4_dissatisfied: "受理评价：不满意", intake_rating_5_very_dissatisfied: "受理评价：非常不满意",
    handling_rating_4_dissatisfied: "办理评价：不满意", handling_rating_5_very_dissatisfied: "办理评价：非常不满意",
  };
  let role = null;

  const api = ConsoleApi.request;

  function status(text) { $("aftercall-status").textContent = text || ""; }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function play(url) {
    const player = $("player");
    player.hidden = false;
    player.src = url;          // the console serves it with HTTP Range: the player seeks without a full download
    player.play().catch(() => {});
  }

  function renderCallbacks(tasks) {
    const list = $("callbacks");
    list.replaceChildren();
    if (!tasks.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "暂无回访任务";
      list.append(li);
    }
    for (const task of tasks) {
      const li = document.createElement("li");
      const text = document.createElement("span");
      const last = task.outcome ? `，上次：${OUTCOMES[task.outcome] || task.outcome}` : "";
      text.textContent = `#${task.id} 工单 ${task.ticket_id || "-"} ${task.number} ${REASONS[task.reason] || task.reason}`
        + `，${task.due} 前${task.assigned_to ? `，${task.assigned_to}` : "，未分派"}，已拨 ${task.attempts} 次${last}`;
      li.append(text, button("回拨", () => callBack(task.id)));
      const redo = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      redo.append(box, "重办");
      li.append(redo, button("完成", () => finish(task.id, box.checked)));
      list.append(li);
    }
  }

  function renderRecordings(recordings) {
    const list = $("recordings");
    list.replaceChildren();
    for (const rec of recordings) {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `${rec.recorded_at.slice(0, 16).replace("T", " ")} 工单 ${rec.ticket || "-"} `
        + `${rec.agent || ""} ${Math.round(rec.duration_s)} 秒`;
      const download = document.createElement("a");
      download.href = `${rec.url}?download=1`;
      download.textContent = "下载";
      li.append(text, button("播放", () => play(rec.url)), download);
      list.append(li);
    }
  }

  function renderPending(pending) {
    const list = $("pending");
    list.replaceChildren();
    for (const p of pending) {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `#${p.id} ${p.number} ${p.requested_by}：${p.reason}`;
      li.append(text);
      if (p.recording) li.append(button("听取录音", () => play(p.recording.url)));
      else li.append(" （录音尚未归档）");
      list.append(li);
    }
  }

  async function refresh() {
    if (role === null) return;
    status("");
    const [callbacks, recordings] = await Promise.all([api("GET", "/api/callbacks"), api("GET", "/api/recordings")]);
    if (callbacks.ok) renderCallbacks(callbacks.data.callbacks);
    if (recordings.ok) renderRecordings(recordings.data.recordings);
    $("pending-section").hidden = role !== "supervisor";
    if (role === "supervisor") {
      const pending = await api("GET", "/api/restrictions/pending");
      if (pending.ok) renderPending(pending.data.pending);
    }
  }

  async function callBack(id) {
    const result = await api("POST", `/api/callbacks/${id}/call`, {});
    status(result.ok ? "正在呼叫您的话机，接听后将拨打来电人" : `无法回拨：${(result.data || {}).reason || result.status}`);
  }

  async function finish(id, redo) {
    const result = await api("POST", `/api/callbacks/${id}/done`, { redo });
    status(result.ok ? (redo ? "已完成，工单退回重办" : "已完成") : `未完成：${(result.data || {}).reason || result.status}`);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("aftercall-refresh").addEventListener("click", refresh);
  });
  document.addEventListener("console:signed-in", (event) => { role = event.detail.role; refresh(); });
  document.addEventListener("console:signed-out", () => {
    role = null;
    for (const id of ["callbacks", "recordings", "pending"]) $(id).replaceChildren();
    const player = $("player");
    player.pause();
    player.removeAttribute("src");
    player.hidden = true;
  });
})();
