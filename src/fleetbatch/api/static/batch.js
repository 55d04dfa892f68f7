// Live progress on the batch page: server-sent events update the bar, counts,
// rate and ETA without a reload, and show the control buttons that apply.
(function () {
  "use strict";
  const section = document.getElementById("progress");
  if (!section || !window.EventSource) return;
  const text = (id, value) => {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  };
  const show = (id, visible) => {
    const el = document.getElementById(id);
    if (el) el.hidden = !visible;
  };
  function update(p) {
    document.getElementById("bar-fill").style.width = p.percent + "%";
    section.querySelector(".bar").setAttribute("aria-valuenow", String(p.percent));
    text("percent", p.percent.toFixed(1) + " %");
    text("done", p.done);
    text("total", p.total);
    const phase = document.getElementById("phase");
    phase.textContent = p.phase;
    phase.className = "status " + p.phase;
    text("breaker", p.breaker);
    text("rate", p.items_per_second.toFixed(1));
    text("eta", p.eta);
    for (const [status, n] of Object.entries(p.counts)) text("count-" + status, n);
    show("waves", p.wave > 0);
    text("wave", p.wave);
    text("waves-total", p.waves_total);
    text("gate", p.gate || "none");
    text("awaiting-wave", p.awaiting_approval || "");
    show("awaiting", Boolean(p.awaiting_approval));
    text("gate-reason", p.gate_reason || "");
    show("gate-reason", Boolean(p.gate_reason));
    const approve = document.getElementById("approve-form");
    if (approve && p.awaiting_approval) {
      approve.action = approve.action.replace(/\/approve\/\d+$/, "/approve/" + p.awaiting_approval);
    }
    text("approve-wave", p.awaiting_approval || "");
    show("approve", !p.finished && Boolean(p.awaiting_approval));
    text("stop-reason", p.stop_reason || "");
    show("stop-reason", Boolean(p.stop_reason));
    show("pause", !p.finished && !p.paused);
    show("resume", !p.finished && p.paused);
    show("cancel", !p.finished);
    show("redrive", p.finished && (p.counts.failed || 0) > 0);
  }
  // The item table and the result files as the server renders them now (same
  // filters), swapped in place.
  async function refreshItems() {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of ["items", "result-files"]) {
      const part = fresh.getElementById(id);
      const shown = document.getElementById(id);
      if (part && shown) shown.replaceWith(part);
    }
  }
  let events = 0;
  const source = new EventSource(section.dataset.events);
  source.addEventListener("progress", (event) => {
    update(JSON.parse(event.data));
    if (++events % 10 === 0) refreshItems();
  });
  source.addEventListener("end", () => {
    source.close();
    refreshItems();
  });
})();
