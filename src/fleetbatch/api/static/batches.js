// The batch list refreshes itself: every few seconds the rows and the pager are
// fetched as the server renders them now (same filters) and swapped in place, so
// progress, counts and statuses move without a reload or a flicker.
(function () {
  "use strict";
  const table = document.getElementById("batches");
  if (!table || !window.fetch) return;
  const every = Number(table.dataset.refresh) || 5000;
  async function refresh() {
    if (document.hidden) return;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const selector of ["#batch-rows", ".pager"]) {
        const part = fresh.querySelector(selector);
        const shown = document.querySelector(selector);
        if (part && shown) shown.replaceWith(part);
      }
    } catch (error) {
      // The server restarting or the network dropping: try again next time.
    }
  }
  window.setInterval(refresh, every);
})();
