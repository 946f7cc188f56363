// The calendar: drag a post to another day (same local time) or use its Reschedule form; both
// send PATCH /api/v1/posts/{id}, and the API's refusal is shown next to the post.
(function () {
  "use strict";
  if (window.postpilotCalendar) { return; }
  window.postpilotCalendar = true;

  function calendarOf(node) { return node.closest(".calendar"); }

  function showProblem(post, text) {
    var box = post.querySelector(".problem");
    if (!box) { return; }
    box.textContent = text;
    box.hidden = !text;
  }

  async function move(post, localTime, dst) {
    var zone = calendarOf(post).dataset.zone;
    showProblem(post, "");
    post.classList.add("moving");
    var change = { scheduled_at: localTime, timezone: zone };
    if (dst) { change.dst = dst; }  // which instant a time the clocks skip or repeat means
    var answer = await window.postpilot.call("PATCH", "/api/v1/posts/" + post.dataset.postId, change);
    post.classList.remove("moving");
    if (answer.ok) {
      window.location.reload();
      return;
    }
    showProblem(post, window.postpilot.problems(answer.data).map(function (p) { return p.message; }).join("; "));
  }

  // The browser's zone, for the next render; reload once if this page was shown in another.
  function adoptZone() {
    var page = document.querySelector(".calendar");
    if (!page) { return; }
    var changed = window.postpilot.setZoneCookie();
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
    if (changed && page.dataset.zoneGiven === "no" && zone && zone !== page.dataset.zone) {
      window.location.reload();
    }
  }

  document.addEventListener("dragstart", function (event) {
    var post = event.target.closest && event.target.closest(".cal-post[draggable=true]");
    if (!post) { return; }
    event.dataTransfer.setData("text/plain", post.dataset.postId);
    event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", function (event) {
    var day = event.target.closest && event.target.closest(".cal-day");
    if (day) { event.preventDefault(); day.classList.add("drop-here"); }
  });
  document.addEventListener("dragleave", function (event) {
    var day = event.target.closest && event.target.closest(".cal-day");
    if (day) { day.classList.remove("drop-here"); }
  });
  document.addEventListener("drop", function (event) {
    var day = event.target.closest && event.target.closest(".cal-day");
    if (!day) { return; }
    event.preventDefault();
    day.classList.remove("drop-here");
    var id = event.dataTransfer.getData("text/plain");
    var post = document.querySelector('.cal-post[data-post-id="' + CSS.escape(id) + '"]');
    if (!post || post.closest(".cal-day") === day) { return; }
    move(post, day.dataset.day + "T" + post.dataset.localTime + ":00");
  });
  // The keyboard way: the form beside each post.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest("form.reschedule");
    if (!form) { return; }
    event.preventDefault();
    var value = form.elements.scheduled_at.value;
    move(form.closest(".cal-post"), value.length === 16 ? value + ":00" : value, form.elements.dst.value);
  }, true);

  document.addEventListener("htmx:load", adoptZone);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", adoptZone);
  } else {
    adoptZone();
  }
})();
