// latch portal: countdowns and ages from data attributes, and a quiet
// refresh of live lists when the server says something changed (server-sent
// events from /events, which carry no data), or on a slow timer for changes
// other replicas make. The pages work without it.
"use strict";
(function () {
  function span(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-expires")) - now;
      el.textContent = left > 0 ? "Open: " + span(left) + " left" : "Expired: closing";
      el.classList.toggle("ended", left <= 0);
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = span(now - Date.parse(el.getAttribute("data-since"))) + " ago";
    });
  }
  function busy() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA") && a.value !== "";
  }
  // One refresh at a time: two in flight could land out of order and leave
  // the older page showing. A change heard meanwhile refreshes once more.
  var inflight = false, again = false;
  function refresh() {
    if (inflight) { again = true; return; }
    var live = document.querySelector("[data-live]");
    if (!live || busy()) return;
    inflight = true;
    fetch(location.href, { credentials: "same-origin", redirect: "manual" }).then(function (r) {
      if (!r.ok) return null;
      return r.text();
    }).then(function (html) {
      if (!html) return;
      var next = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
      var now = document.querySelector("[data-live]");
      if (next && now && !busy()) { now.replaceWith(next); tick(); }
    }).catch(function () {}).finally(function () {
      inflight = false;
      if (again) { again = false; refresh(); }
    });
  }
  tick();
  setInterval(tick, 1000);
  var live = document.querySelector("[data-live]");
  if (live && window.EventSource) {
    // The stream ends every 45 s and the browser reconnects; a change made
    // while it was away is caught by refreshing on every reopening.
    var es = new EventSource("/events"), opened = false;
    es.addEventListener("open", function () {
      document.documentElement.setAttribute("data-events", "open");
      if (opened) refresh();
      opened = true;
    });
    es.addEventListener("error", function () {
      document.documentElement.setAttribute("data-events", "closed");
    });
    es.addEventListener("changed", refresh);
    setInterval(refresh, 60000);
  } else {
    setInterval(refresh, 10000);
  }
})();
