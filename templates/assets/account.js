// Account pages: passkeys (they need a script), LNURL-auth sign-in learned of live, and the
// payments list kept current. Every form on these pages also works without it.
(function () {
  "use strict";
  var page = document.getElementById("account");
  var csrf = page ? page.getAttribute("data-csrf") : "";

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (json) {
        if (!r.ok) throw new Error(json.error || "That did not work.");
        return json;
      });
    });
  }

  function say(id, text) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  function failure(id) {
    return function (e) {
      // A person who closes the passkey prompt has not failed at anything.
      if (e && e.name === "NotAllowedError") say(id, "The passkey prompt was closed. Try again when ready.");
      else say(id, (e && e.message) || "That did not work.");
    };
  }

  var supported = window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON;

  function create(start) {
    return start.then(function (begun) {
      var options = PublicKeyCredential.parseCreationOptionsFromJSON(begun.options.publicKey);
      return navigator.credentials.create({ publicKey: options }).then(function (credential) {
        return { challenge: begun.challenge, credential: credential.toJSON() };
      });
    });
  }

  // Joining: a name and a first passkey.
  var join = document.getElementById("join");
  if (join) {
    join.addEventListener("submit", function (event) {
      // The wallet button posts the form as it is (LNURL-auth needs no script).
      if (event.submitter && event.submitter.id === "join-wallet") return;
      event.preventDefault();
      say("join-error", "");
      if (!supported) return say("join-error", "This browser cannot make passkeys. Try a current one.");
      var name = join.querySelector("[name=name]").value;
      // The console's operator sign-up runs the same ceremony at its own endpoints.
      var start = join.getAttribute("data-start") || "/join/start";
      var finish = join.getAttribute("data-finish") || "/join/finish";
      create(post(start, { token: join.getAttribute("data-token"), name: name }))
        .then(function (done) { return post(finish, done); })
        .then(function (next) { window.location.assign(next.next); })
        .catch(failure("join-error"));
    });
  }

  // Signing in with a passkey: the authenticator says whose it is.
  var login = document.getElementById("passkey-login");
  if (login) {
    login.addEventListener("click", function () {
      say("login-error", "");
      if (!supported) return say("login-error", "This browser cannot use passkeys. Sign in with a Lightning wallet.");
      post(login.getAttribute("data-start") || "/login/passkey/start")
        .then(function (begun) {
          var options = PublicKeyCredential.parseRequestOptionsFromJSON(begun.options.publicKey);
          return navigator.credentials.get({ publicKey: options }).then(function (credential) {
            var finish = login.getAttribute("data-finish") || "/login/passkey/finish";
            return post(finish, { challenge: begun.challenge, credential: credential.toJSON() });
          });
        })
        .then(function (next) { window.location.assign(next.next); })
        .catch(failure("login-error"));
    });
  }

  // Adding a passkey from the account page.
  var add = document.getElementById("passkey-add");
  if (add) {
    add.addEventListener("click", function () {
      say("passkey-error", "");
      if (!supported) return say("passkey-error", "This browser cannot make passkeys.");
      var count = document.querySelectorAll("#passkeys li").length;
      create(post("/account/passkeys/start"))
        .then(function (done) {
          done.label = "Passkey " + (count + 1);
          return post("/account/passkeys/finish", done);
        })
        .then(function (next) { window.location.assign(next.next); })
        .catch(failure("passkey-error"));
    });
  }

  // Scanning a wallet connection's QR code with the camera: the reader is fetched only now.
  var scan = document.getElementById("nwc-scan");
  if (scan && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    scan.hidden = false;
    scan.addEventListener("click", function () {
      var video = document.getElementById("nwc-video");
      var status = document.getElementById("nwc-scan-status");
      var field = document.getElementById("nwc");
      var canvas = document.createElement("canvas");
      var stream = null;
      var stop = function () {
        if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
        video.hidden = true;
      };
      var look = function () {
        if (!stream) return;
        if (video.videoWidth) {
          canvas.width = video.videoWidth; canvas.height = video.videoHeight;
          var context = canvas.getContext("2d", { willReadFrequently: true });
          context.drawImage(video, 0, 0);
          var frame = context.getImageData(0, 0, canvas.width, canvas.height);
          var code = window.jsQR(frame.data, frame.width, frame.height);
          if (code && /^nostr\+walletconnect:/i.test(code.data)) {
            field.value = code.data;
            status.textContent = "Read the connection. Press \u201cTry it and connect\u201d.";
            stop(); stream = null;
            return;
          }
        }
        setTimeout(look, 200);
      };
      status.hidden = false;
      status.textContent = "Point the camera at the wallet's connection code\u2026";
      var reader = window.jsQR ? Promise.resolve() : new Promise(function (done, fail) {
        var tag = document.createElement("script");
        tag.src = "/assets/jsqr.js"; tag.onload = done; tag.onerror = fail;
        document.head.appendChild(tag);
      });
      reader
        .then(function () { return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }); })
        .then(function (s) { stream = s; video.srcObject = s; video.hidden = false; return video.play(); })
        .then(look)
        .catch(function () { status.textContent = "The camera could not be used: paste the connection instead."; stop(); });
    });
  }

  // LNURL-auth: learn of the wallet's signature without a reload.
  var waiting = document.getElementById("lnurl-auth-status");
  if (waiting) {
    var poll = function () {
      fetch("/login/lnurl", { cache: "no-store", credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.status === "signed_in" || s.status === "linked") return window.location.assign(s.next);
          if (s.status === "refused") { waiting.textContent = s.reason; waiting.classList.add("error"); return; }
          if (s.status === "gone") { waiting.textContent = "This code has expired. Reload the page for a new one."; return; }
          setTimeout(poll, 1500);
        })
        .catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 1500);
  }

  // Payments arrive live: a row changes, or a new one appears on top.
  var table = document.querySelector("#payments tbody");
  if (table && window.EventSource) {
    var cell = function (text, small) {
      var td = document.createElement("td");
      if (small) { var s = document.createElement("small"); s.textContent = text; td.appendChild(s); }
      else td.textContent = text || "";
      return td;
    };
    var follow = function () {
    var since = document.getElementById("payments").getAttribute("data-since");
    var live = new EventSource("/account/payments/live?since=" + encodeURIComponent(since));
    live.addEventListener("open", function () { table.parentNode.setAttribute("data-live", "open"); });
    live.addEventListener("payment", function (event) {
      var p = JSON.parse(event.data);
      var row = table.querySelector('tr[data-hash="' + p.payment_hash + '"]');
      var fresh = document.createElement("tr");
      fresh.setAttribute("data-hash", p.payment_hash);
      fresh.className = p.status;
      fresh.appendChild(cell(p.when));
      fresh.appendChild(cell(p.sats + (p.fiat ? " (" + p.fiat + ")" : "")));
      var status = cell(p.status); status.className = "status"; fresh.appendChild(status);
      fresh.appendChild(p.payer ? cell(p.payer) : cell(p.zap_from ? "⚡ " + p.zap_from : "", !!p.zap_from));
      fresh.appendChild(cell(p.comment));
      if (row) table.replaceChild(fresh, row); else table.insertBefore(fresh, table.firstChild);
      var none = document.getElementById("no-payments");
      if (none) none.hidden = true;
    });
    live.addEventListener("reload", function () { window.location.reload(); });
    };
    // After the page has loaded: an open stream is no part of loading it.
    if (document.readyState === "complete") follow(); else window.addEventListener("load", follow);
  }
})();
