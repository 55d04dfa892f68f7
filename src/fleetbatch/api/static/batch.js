// Live progress on the batch page: server-sent events update the bar's segments,
// the counts, rate and ETA without a reload, announce progress to screen readers
// in steps, and show the control buttons that apply. The item table, the chart
// and the failure reasons are fetched again as the server renders them now.
(function () {
  "use strict";
  const section = document.getElementById("progress");
  if (!section || !window.EventSource) return;
  const byId = (id) => document.getElementById(id);
  const text = (id, value) => {
    const el = byId(id);
    if (el) el.textContent = value;
  };
  const show = (id, visible) => {
    const el = byId(id);
    if (el) el.hidden = !visible;
  };
  // As display.utc writes it: 2026-12-02 01:35:44 UTC.
  const utc = (iso) => new Date(iso).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  // As display.per_minute writes it: 1,200; one decimal under 10.
  const perMinute = (v) => (v >= 10 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1));

  // A polite live region that speaks on a phase change and every tenth of the way,
  // not on every event (twice a second would drown a screen reader).
  let spokenPhase = null;
  let spokenStep = -1;
  function announce(p) {
    const step = Math.floor(p.percent / 10);
    if (p.phase === spokenPhase && step === spokenStep) return;
    spokenPhase = p.phase;
    spokenStep = step;
    text("announce", Math.floor(p.percent) + " % settled, " + p.done + " of " + p.total +
      " items, " + p.phase);
  }

  function update(p) {
    const bar = byId("bar");
    bar.setAttribute("aria-valuenow", String(p.percent));
    bar.setAttribute("aria-valuetext", p.percent.toFixed(1) + " % settled");
    for (const [status, n] of Object.entries(p.counts)) {
      const seg = byId("seg-" + status);
      if (seg) {
        seg.style.width = (p.total ? (100 * n) / p.total : 0) + "%";
        seg.title = status.replace("_", " ") + ": " + n;
      }
      text("count-" + status, n);
    }
    text("percent", p.percent.toFixed(1) + " %");
    text("done", p.done);
    text("total", p.total);
    const phase = byId("phase");
    phase.textContent = p.phase;
    phase.className = "status " + p.phase;
    text("breaker", p.breaker);
    text("rate", p.items_per_second.toFixed(1));
    text("eta", p.eta);
    show("eta-part", p.eta_seconds !== null && !p.paused && !p.finished);
    if (p.updated_at) {
      const updated = byId("updated");
      updated.textContent = utc(p.updated_at);
      updated.setAttribute("datetime", p.updated_at);
    }
    show("waves", p.wave > 0);
    text("wave", p.wave);
    text("waves-total", p.waves_total);
    text("gate", p.gate || "none");
    text("awaiting-wave", p.awaiting_approval || "");
    show("awaiting", Boolean(p.awaiting_approval));
    show("window", Boolean(p.window));
    const windowState = byId("window-state");
    windowState.textContent = p.window || "";
    windowState.className = "status " + (p.window || "");
    text("window-verb", p.window === "waiting" ? "opens" : "closes");
    show("window-next", Boolean(p.window_until));
    if (p.window_until) {
      const until = byId("window-until");
      until.textContent = utc(p.window_until);
      until.setAttribute("datetime", p.window_until);
    }
    show("ramp", p.allowed_per_minute !== null);
    if (p.allowed_per_minute !== null) text("allowed-rate", perMinute(p.allowed_per_minute));
    show("in-flight", p.in_flight_allowance !== null);
    if (p.in_flight_allowance !== null) {
      text("allowance", p.in_flight_allowance.toLocaleString("en-US"));
    }
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
    announce(p);
  }

  const PARTS = ["items-wrap", "result-files", "chart", "reasons"];
  async function refreshParts() {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of PARTS) {
      const part = fresh.getElementById(id);
      const shown = byId(id);
      if (part && shown) shown.replaceWith(part);
    }
  }
  let events = 0;
  const source = new EventSource(section.dataset.events);
  source.addEventListener("progress", (event) => {
    update(JSON.parse(event.data));
    if (++events % 10 === 0) refreshParts();
  });
  source.addEventListener("end", () => {
    source.close();
    refreshParts();
  });
})();
