// postpilot's pages call the JSON API with the session cookie and the page's CSRF token;
// every answer's error shape ({"error": {"code", "message", "details"}}) is shown by field.
(function () {
  "use strict";
  if (window.postpilot) { return; }

  function csrfToken() {
    var holder = document.querySelector("[hx-headers]");
    if (!holder) { return ""; }
    try { return JSON.parse(holder.getAttribute("hx-headers"))["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  // One call: JSON in (or FormData), {ok, status, data} out; a network failure is a 0 status.
  async function call(method, path, body) {
    var headers = { "X-CSRF-Token": csrfToken(), "Accept": "application/json" };
    var payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    try {
      var answer = await fetch(path, { method: method, headers: headers, body: payload, credentials: "same-origin" });
      var data = null;
      try { data = await answer.json(); } catch (e) { data = null; }
      return { ok: answer.ok, status: answer.status, data: data };
    } catch (e) {
      return { ok: false, status: 0, data: { error: { code: "network", message: "the server did not answer: try again", details: [] } } };
    }
  }

  // Where a problem belongs: the detail's field (`scheduled_at`, `body.text`), else the word
  // before its first colon ("overrides: ..."), which is how the API names fields in messages.
  function fieldOf(detail) {
    var name = detail.field || "";
    if (!name && detail.message) {
      var match = /^([a-z_]+(?:\.[a-z_0-9]+)*):/.exec(detail.message);
      if (match) { name = match[1]; }
    }
    return name.replace(/^body\./, "").split(".")[0];
  }

  function problems(data) {
    var error = (data && data.error) || { message: "something went wrong", details: [] };
    var details = error.details && error.details.length ? error.details : [{ message: error.message }];
    // One detail without a field of its own belongs where the error's message says.
    var whole = details.length === 1 ? fieldOf({ message: error.message || "" }) : "";
    return details.map(function (d) { return { field: fieldOf(d) || whole, message: d.message }; });
  }

  function setZoneCookie() {
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
    if (zone && document.cookie.indexOf("pp_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "pp_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
      return true;
    }
    return false;
  }

  window.postpilot = { call: call, problems: problems, setZoneCookie: setZoneCookie, csrfToken: csrfToken };
})();
