// The composer: counters from /compose/counts (core/limits.py), previews per chosen account,
// uploads to /api/v1/media, and the post sent to /api/v1/posts; a refusal is shown by its field.
(function () {
  "use strict";
  if (window.postpilotComposer) { return; }
  window.postpilotComposer = true;

  var media = [];  // {id, thumbnail_url, alt_text}
  var countTimer = null;
  var countSeq = 0;

  function form() { return document.getElementById("composer"); }
  function chosen() {
    return Array.prototype.slice.call(form().querySelectorAll('input[name="targets"]:checked'))
      .map(function (box) { return { id: box.value, platform: box.dataset.platform, handle: box.dataset.handle }; });
  }
  function platforms() {
    var seen = [];
    chosen().forEach(function (a) { if (seen.indexOf(a.platform) === -1) { seen.push(a.platform); } });
    return seen;
  }
  function override(platform) {
    var box = document.getElementById("override-" + platform);
    return box ? box.value : "";
  }
  function textFor(platform) { return override(platform).trim() ? override(platform) : form().elements.text.value; }
  function accountBox(id) { return document.getElementById("account-" + id); }
  function textOf(account) {
    var own = accountBox(account.id);
    return own && own.value.trim() ? own.value : textFor(account.platform);
  }
  // Per-account variants written for chosen accounts: id -> {text, media_ids kept from before}.
  function accountOverrides() {
    var found = {};
    chosen().forEach(function (a) {
      var own = accountBox(a.id);
      if (!own || !own.value.trim()) { return; }
      found[a.id] = { text: own.value };
      var kept = (own.dataset.mediaIds || "").split(",").filter(Boolean);
      if (kept.length) { found[a.id].media_ids = kept; }
    });
    return found;
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function showVariants() {
    var on = platforms();
    var ids = chosen().map(function (a) { return a.id; });
    form().querySelectorAll("details.variant[data-platform]").forEach(function (d) { d.hidden = on.indexOf(d.dataset.platform) === -1; });
    form().querySelectorAll("details.account-variant").forEach(function (d) { d.hidden = ids.indexOf(d.dataset.accountId) === -1; });
  }

  async function recount() {
    var list = document.getElementById("counters");
    var on = platforms();
    var overrides = {};
    on.forEach(function (p) { if (override(p).trim()) { overrides[p] = override(p); } });
    var own = {};
    var handles = {};
    chosen().forEach(function (a) {
      handles[a.id] = a.handle;
      var box = accountBox(a.id);
      if (box && box.value.trim()) { own[a.id] = { platform: a.platform, text: box.value }; }
    });
    var seq = ++countSeq;
    var answer = await window.postpilot.call("POST", "/compose/counts",
      { text: form().elements.text.value, overrides: overrides, platforms: on, media_count: media.length, accounts: own });
    if (seq !== countSeq) { return; }  // a newer count is on its way
    list.textContent = "";
    if (!answer.ok) { return; }
    answer.data.counts.forEach(function (c) {
      var item = el("li", "counter platform-" + c.platform + (c.problems.length ? " over" : ""));
      item.dataset.platform = c.platform;
      if (c.account_id) { item.dataset.accountId = c.account_id; }
      item.appendChild(el("span", "counter-platform", c.account_id ? handles[c.account_id] + " on " + c.platform : c.platform));
      item.appendChild(el("span", "counter-value", " " + c.count + " / " + c.limit + " " + c.unit));
      if (c.problems.length) { item.appendChild(el("span", "counter-problem", " · " + c.problems.join("; "))); }
      list.appendChild(item);
    });
  }
  function scheduleCount() {
    clearTimeout(countTimer);
    countTimer = setTimeout(recount, 150);
  }

  function renderPreviews() {
    var box = document.getElementById("previews");
    box.textContent = "";
    var accounts = chosen();
    document.getElementById("preview-empty").hidden = accounts.length > 0;
    accounts.forEach(function (a) {
      var card = el("article", "preview platform-" + a.platform);
      card.setAttribute("aria-label", "Preview on " + a.platform + " " + a.handle);
      var head = el("header", "preview-head");
      head.appendChild(el("span", "preview-avatar", (a.handle.replace(/^[@#]/, "")[0] || "?").toUpperCase()));
      head.appendChild(el("strong", "preview-handle", a.handle));
      head.appendChild(el("span", "preview-platform", a.platform));
      card.appendChild(head);
      card.appendChild(el("p", "preview-text", textOf(a)));
      if (media.length) {
        var images = el("div", "preview-media n" + Math.min(media.length, 4));
        media.forEach(function (m) {
          var img = el("img");
          img.src = m.thumbnail_url;
          img.alt = m.alt_text || "";
          images.appendChild(img);
        });
        card.appendChild(images);
      }
      box.appendChild(card);
    });
  }

  function renderMedia() {
    var list = document.getElementById("media-list");
    list.textContent = "";
    media.forEach(function (m, index) {
      var item = el("li", "media-item");
      var img = el("img");
      img.src = m.thumbnail_url;
      img.alt = m.alt_text || "";
      item.appendChild(img);
      item.appendChild(el("span", "media-alt", m.alt_text ? "Alt: " + m.alt_text : "No alt text"));
      var remove = el("button", "danger", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove image " + (index + 1));
      remove.addEventListener("click", function () { media.splice(index, 1); refresh(); });
      item.appendChild(remove);
      list.appendChild(item);
    });
  }

  function refresh() {
    showVariants();
    renderMedia();
    renderPreviews();
    scheduleCount();
  }

  function clearProblems() {
    form().querySelectorAll(".field-problem").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form().querySelectorAll("[aria-invalid]").forEach(function (f) { f.removeAttribute("aria-invalid"); });
  }

  // The API names a field (`scheduled_at`), or a platform ("x: text is 300 ..."), whose text
  // is its variant when one is written, else the main text.
  function targetOf(problem) {
    var own = /^account_overrides\.([0-9a-f-]{36})/.exec(problem.message || "") || /^account_overrides\.([0-9a-f-]{36})/.exec(problem.field || "");
    if (own) { return accountBox(own[1]) ? "account-" + own[1] : "account_overrides"; }
    var field = problem.field;
    if (field === "media_urls") { field = "media_ids"; }
    if (platforms().indexOf(field) !== -1 || document.getElementById("override-" + field)) {
      if (/image/.test(problem.message)) { return "media_ids"; }
      return override(field).trim() ? "override-" + field : "text";
    }
    return form().querySelector('.field-problem[data-for="' + field + '"]') ? field : "";
  }

  function showProblems(data) {
    var grouped = {};
    window.postpilot.problems(data).forEach(function (p) {
      var where = targetOf(p);
      (grouped[where] = grouped[where] || []).push(p.message);
    });
    Object.keys(grouped).forEach(function (where) {
      var box = form().querySelector('.field-problem[data-for="' + where + '"]');
      box.textContent = grouped[where].join("; ");
      box.hidden = false;
      var field = where && (form().elements[where] || document.getElementById(where));
      if (field && field.setAttribute) { field.setAttribute("aria-invalid", "true"); }
    });
    var first = form().querySelector(".field-problem:not([hidden])");
    if (first) { first.scrollIntoView({ block: "center" }); }
  }

  function body(withTime) {
    var f = form().elements;
    var on = platforms();
    var overrides = {};
    on.forEach(function (p) { if (override(p).trim()) { overrides[p] = override(p); } });
    var data = {
      text: f.text.value,
      targets: chosen().map(function (a) { return a.id; }),
      media_ids: media.map(function (m) { return m.id; }),
      overrides: overrides,
      account_overrides: accountOverrides(),
      timezone: f.timezone.value
    };
    if (f.dst.value) { data.dst = f.dst.value; }
    if (withTime && f.scheduled_at.value) {
      data.scheduled_at = f.scheduled_at.value.length === 16 ? f.scheduled_at.value + ":00" : f.scheduled_at.value;
    }
    return data;
  }

  async function send(action) {
    clearProblems();
    var id = form().dataset.postId;
    var answer;
    if (action === "schedule" && !form().elements.scheduled_at.value) {
      showProblems({ error: { message: "scheduled_at: give a date and time, or use Publish now", details: [] } });
      return;
    }
    form().querySelectorAll(".composer-actions button").forEach(function (b) { b.disabled = true; });
    if (action === "cancel") {
      answer = await window.postpilot.call("POST", "/api/v1/posts/" + id + "/cancel");
    } else if (action === "save") {
      answer = await window.postpilot.call("PATCH", "/api/v1/posts/" + id, body(true));
    } else if (action === "queue") {
      var queued = body(false);
      queued.queue_id = form().elements.queue_id.value;
      answer = await window.postpilot.call("POST", "/api/v1/posts", queued);
    } else {
      answer = await window.postpilot.call("POST", "/api/v1/posts", body(action === "schedule"));
    }
    form().querySelectorAll(".composer-actions button").forEach(function (b) { b.disabled = false; });
    if (answer.ok) {
      var post = answer.data.post || answer.data;
      window.location.assign("/posts/" + post.id);
      return;
    }
    showProblems(answer.data);
  }

  async function upload() {
    var file = document.getElementById("media-file");
    var alt = document.getElementById("media-alt");
    var problem = form().querySelector('.field-problem[data-for="media"]');
    problem.hidden = true;
    if (!file.files.length) {
      problem.textContent = "Choose an image first.";
      problem.hidden = false;
      return;
    }
    var data = new FormData();
    data.append("file", file.files[0]);
    if (alt.value.trim()) { data.append("alt_text", alt.value.trim()); }
    if (platforms().length) { data.append("platforms", platforms().join(",")); }
    var button = document.getElementById("media-upload");
    button.disabled = true;
    var answer = await window.postpilot.call("POST", "/api/v1/media", data);
    button.disabled = false;
    if (!answer.ok) {
      problem.textContent = window.postpilot.problems(answer.data).map(function (p) { return p.message; }).join("; ");
      problem.hidden = false;
      return;
    }
    media.push({ id: answer.data.id, thumbnail_url: answer.data.thumbnail_url, alt_text: answer.data.alt_text });
    file.value = "";
    alt.value = "";
    refresh();
  }

  async function loadMedia(ids) {
    for (var i = 0; i < ids.length; i++) {
      var answer = await window.postpilot.call("GET", "/api/v1/media/" + ids[i]);
      if (answer.ok) { media.push({ id: answer.data.id, thumbnail_url: answer.data.thumbnail_url, alt_text: answer.data.alt_text }); }
    }
    refresh();
  }

  function start() {
    if (!form() || form().dataset.started) { return; }
    form().dataset.started = "yes";
    media = [];
    window.postpilot.setZoneCookie();
    form().addEventListener("input", function (event) {
      // An edited field's old refusal no longer applies.
      var problem = event.target.name && form().querySelector('.field-problem[data-for="' + event.target.name + '"]');
      if (problem) { problem.hidden = true; event.target.removeAttribute("aria-invalid"); }
      var name = event.target.name || "";
      if (name === "text" || name.indexOf("override-") === 0 || name.indexOf("account-") === 0) {
        renderPreviews();
        scheduleCount();
      }
    });
    form().addEventListener("change", function (event) { if (event.target.name === "targets") { refresh(); } });
    form().addEventListener("submit", function (event) {
      event.preventDefault();
      var action = event.submitter && event.submitter.dataset.action;
      send(action || (form().dataset.postId ? "save" : "schedule"));
    });
    form().querySelectorAll('button[type="button"][data-action]').forEach(function (b) {
      b.addEventListener("click", function () {
        if (b.dataset.action === "cancel" && !window.confirm("Cancel this post? It will not be published.")) { return; }
        send(b.dataset.action);
      });
    });
    document.getElementById("media-upload").addEventListener("click", upload);
    var ids = (form().dataset.mediaIds || "").split(",").filter(Boolean);
    if (ids.length) { loadMedia(ids); } else { refresh(); }
  }

  document.addEventListener("htmx:load", start);
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
