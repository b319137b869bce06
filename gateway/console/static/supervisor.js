// The supervisors' page (gateway/console/office_api.py): a click on an entry of the nuisance review raises a
// pending restriction request for that entry's number (art. 9); a supervisor still confirms it with the CLI.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const message = document.getElementById("review-message");
  for (const button of document.querySelectorAll("button.request")) {
    button.addEventListener("click", async () => {
      const callId = button.dataset.call;
      const reason = document.getElementById("review-reason").value.trim();
      if (!reason) {
        message.textContent = "请填写申请理由";
        return;
      }
      button.disabled = true;
      let reply;
      try {
        reply = await fetch("/api/office/nuisance/request", {
          method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ call_id: callId, reason }),
        });
      } catch (error) {
        message.textContent = "网络错误，申请未提交";
        button.disabled = false;
        return;
      }
      const body = await reply.json().catch(() => ({}));
      if (reply.status === 201) {
        const row = button.closest("tr");
        row.querySelector(".state").textContent = `待审批申请 ${body.pending_request}`;
        button.remove();
        message.textContent = `已提交限制申请 ${body.pending_request}，待班长确认`;
      } else {
        message.textContent = `申请未提交：${body.reason || reply.status}`;
        button.disabled = false;
      }
    });
  }
});
