// mooring dashboard: live refresh and admin actions. No dependencies, no network beyond this server.
(function () {
  "use strict";
  var TOKEN_KEY = "mooring-admin-token";
  var FLASH_KEY = "mooring-admin-flash";

  function setStatus(el, text, kind) {
    if (!el) return;
    el.textContent = text;
    el.className = "status" + (kind ? " " + kind : "");
  }

  function cell(tag, text, cls) {
    var node = document.createElement(tag);
    node.textContent = text;
    if (cls) node.className = cls;
    if (tag === "th") node.setAttribute("scope", "row");
    return node;
  }

  function startLive(root) {
    var src = root.getAttribute("data-src");
    var interval = parseInt(root.getAttribute("data-interval"), 10) || 2000;
    var status = document.getElementById("live-status");
    var busy = false;

    function render(data) {
      ["rate", "latency", "errors"].forEach(function (key) {
        var box = document.getElementById("chart-" + key);
        // The server builds these SVGs and escapes every text it draws into them.
        if (box && data.charts && data.charts[key]) box.innerHTML = data.charts[key];
      });
      var body = document.getElementById("live-rows");
      if (body && data.rows) {
        var fresh = document.createDocumentFragment();
        data.rows.forEach(function (r) {
          var tr = document.createElement("tr");
          tr.appendChild(cell("th", r.series));
          [r.requests, r.rate, r.error_rate, r.client_error_rate, r.p50, r.p95, r.p99].forEach(function (v) {
            tr.appendChild(cell("td", v, "num"));
          });
          fresh.appendChild(tr);
        });
        body.replaceChildren(fresh);
      }
      var caption = document.getElementById("live-caption");
      if (caption && data.caption) caption.textContent = data.caption;
      var dep = data.deployment || {};
      var canary = document.getElementById("live-canary");
      if (canary) canary.textContent = dep.canary != null ? "v" + dep.canary + " at " + dep.canary_weight + "%" : "none";
      if (data.error) setStatus(status, data.error, "bad");
      else setStatus(status, "Updated " + new Date((data.updated_at || 0) * 1000).toLocaleTimeString() +
        " · " + data.points + " intervals over " + Math.round(data.window_s || 0) + " s", "");
      root.setAttribute("data-points", String(data.points || 0));
    }

    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(src, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "omit" })
        .then(function (res) {
          return res.json().then(function (body) {
            if (!res.ok) throw new Error(body.error || res.statusText);
            return body;
          });
        })
        .then(render)
        .catch(function (err) { setStatus(status, "Cannot refresh: " + err.message, "bad"); })
        .then(function () { busy = false; });
    }
    tick();
    window.setInterval(tick, interval);
    document.addEventListener("visibilitychange", tick);
  }

  function startAdmin(form) {
    var api = form.getAttribute("data-api");
    var status = document.getElementById("admin-status");
    var token = document.getElementById("admin-token");
    try {
      var saved = window.sessionStorage.getItem(TOKEN_KEY);
      if (saved && token) token.value = saved;
      var flash = window.sessionStorage.getItem(FLASH_KEY);
      if (flash) {
        window.sessionStorage.removeItem(FLASH_KEY);
        setStatus(status, flash, "ok");
      }
    } catch (e) { /* storage may be off; the field still works */ }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var submitter = event.submitter || document.activeElement;
      var action = submitter && submitter.value;
      var data = new FormData(form);
      var reason = String(data.get("reason") || "").trim();
      var secret = String(data.get("token") || "").trim();
      if (!secret) { setStatus(status, "Enter the admin token.", "bad"); token.focus(); return; }
      if (!reason) { setStatus(status, "Give a reason: it is recorded in the audit log.", "bad"); document.getElementById("admin-reason").focus(); return; }
      var body = { reason: reason, actor: String(data.get("actor") || "").trim() || null };
      if (action === "promote" || action === "approve") body.version = parseInt(data.get("promote_version"), 10);
      if (action === "canary") {
        var v = String(data.get("canary_version"));
        body.version = v === "none" ? null : parseInt(v, 10);
        body.weight = parseInt(data.get("weight"), 10);
      }
      if (action === "shadow") {
        var s = String(data.get("shadow_version"));
        body.version = s === "none" ? null : parseInt(s, 10);
        body.rate = parseFloat(data.get("shadow_rate"));
      }
      var buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
      setStatus(status, "Sending " + action + "…", "");
      fetch(api + "/" + action, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + secret, Accept: "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      })
        .then(function (res) {
          return res.json().then(function (payload) {
            if (!res.ok) throw new Error(payload.error || res.statusText);
            return payload;
          });
        })
        .then(function (payload) {
          var dep = payload.deployment || {};
          var text = action === "approve" ? "Approved v" + body.version + " for production" +
            (payload.event ? " (audit event #" + payload.event.seq + ")" : "") :
            "Done: production v" + dep.production +
            (dep.canary != null ? ", canary v" + dep.canary + " at " + dep.canary_weight + "%" : ", no canary") +
            (payload.event ? " (audit event #" + payload.event.seq + ")" : "");
          try {
            window.sessionStorage.setItem(TOKEN_KEY, secret);
            window.sessionStorage.setItem(FLASH_KEY, text);
          } catch (e) { /* ignore */ }
          window.location.reload();
        })
        .catch(function (err) {
          setStatus(status, "Refused: " + err.message, "bad");
          buttons.forEach(function (b) { b.removeAttribute("aria-disabled"); });
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live) startLive(live);
    var form = document.getElementById("admin-form");
    if (form) startAdmin(form);
  });
})();
