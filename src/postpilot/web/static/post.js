// A post's page: retry a failed delivery or settle an unknown one through
// POST /api/v1/deliveries/{id}/resolve; a refusal is shown in the delivery's row.
(function () {
  "use strict";
  if (window.postpilotPost) { return; }
  window.postpilotPost = true;

  document.addEventListener("submit", async function (event) {
    var form = event.target.closest && event.target.closest("form.resolve");
    if (!form) { return; }
    event.preventDefault();
    var body = { resolution: form.elements.resolution.value };
    ["platform_post_id", "platform_url", "note"].forEach(function (name) {
      var field = form.elements[name];
      if (field && field.value.trim()) { body[name] = field.value.trim(); }
    });
    var problem = form.closest("td").querySelector(".problem");
    problem.hidden = true;
    var button = form.querySelector("button");
    button.disabled = true;
    var answer = await window.postpilot.call("POST", "/api/v1/deliveries/" + form.dataset.deliveryId + "/resolve", body);
    button.disabled = false;
    if (answer.ok) {
      window.location.reload();
      return;
    }
    problem.textContent = window.postpilot.problems(answer.data).map(function (p) { return p.message; }).join("; ");
    problem.hidden = false;
  }, true);
})();
