// The console kept current: when the server says something changed (a payment, new
// invoices), the page fetches itself and swaps in its live parts. Without this script every
// page is current as of its loading, and a reload shows the rest.
(function () {
  "use strict";
  var live = document.querySelectorAll("[data-live]");
  if (!live.length || !window.EventSource || !window.DOMParser) return;
  var pending = null;
  function refresh() {
    pending = null;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (part) {
          var next = part.id && fresh.getElementById(part.id);
          // Open details (a chart's numbers) stay open.
          if (!next) return;
          var open = Array.prototype.map.call(part.querySelectorAll("details"), function (d) { return d.open; });
          part.replaceWith(document.importNode(next, true));
          var now = document.getElementById(part.id);
          now.querySelectorAll("details").forEach(function (d, i) { if (open[i]) d.open = true; });
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {});
  }
  var source = new EventSource("/admin/live");
  source.addEventListener("changed", function () {
    // A burst of payments is one refresh.
    if (!pending) pending = setTimeout(refresh, 500);
  });
})();
