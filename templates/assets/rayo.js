// Progressive enhancement only: every page works without this script.
(function () {
  // Copy buttons.
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy");
      if (navigator.clipboard) {
        navigator.clipboard.writeText(text).then(function () {
          var label = button.textContent;
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = label; }, 1500);
        });
      }
    });
  });

  // Checkout: count down, and switch to paid or expired as soon as the server says so.
  var checkout = document.getElementById("checkout");
  if (!checkout) return;
  var countdown = document.getElementById("countdown");
  var expiresAt = Number(checkout.getAttribute("data-expires-at"));
  var statusUrl = checkout.getAttribute("data-status-url");
  function show(status) {
    checkout.setAttribute("data-status", status);
    checkout.querySelectorAll(".state").forEach(function (el) {
      el.hidden = !el.classList.contains(status);
    });
  }
  function tick() {
    var left = Math.max(0, expiresAt - Math.floor(Date.now() / 1000));
    var minutes = Math.floor(left / 60), seconds = left % 60;
    if (countdown) countdown.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
  }
  function poll() {
    if (checkout.getAttribute("data-status") !== "pending") return;
    fetch(statusUrl, { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) { if (s.status !== "pending") show(s.status); })
      .catch(function () {})
      .then(function () { setTimeout(poll, 1000); });
  }
  tick();
  setInterval(tick, 1000);
  poll();
})();
