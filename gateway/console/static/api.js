// The console's calls to its own JSON API (same origin, the session cookie), shared by console.js and aftercall.js:
// {ok, status, data} with data the parsed JSON body, or null.
"use strict";

const ConsoleApi = {
  async request(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data };
  },
};
