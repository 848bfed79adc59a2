// The admin console's only script (the pages work without it): times in the
// viewer's own time zone, the time-zone offset the log's date filters need,
// copy buttons, and the log's live mode.
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.title = d.toLocaleString(); }
    });
  }

  document.querySelectorAll("[data-tzo]").forEach(function (i) {
    i.value = String(new Date().getTimezoneOffset());
  });

  document.querySelectorAll("[data-copy]").forEach(function (b) {
    var source = document.getElementById(b.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () { b.textContent = "Copied"; });
    });
  });

  localTimes(document);

  var table = document.querySelector("table[data-live]");
  if (table) {
    var body = table.querySelector("tbody");
    var status = document.getElementById("live-status");
    var newest = Number(table.getAttribute("data-newest")) || 0;
    var url = table.getAttribute("data-live");
    var poll = function () {
      fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "after=" + newest, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
        .then(function (html) {
          var t = document.createElement("template");
          t.innerHTML = "<table><tbody>" + html + "</tbody></table>";
          var rows = Array.prototype.slice.call(t.content.querySelectorAll("tr[data-id]"));
          rows.reverse().forEach(function (row) {
            var id = Number(row.getAttribute("data-id"));
            if (id > newest && !body.querySelector('tr[data-id="' + id + '"]')) {
              row.classList.add("new");
              body.insertBefore(document.importNode(row, true), body.firstChild);
            }
          });
          rows.forEach(function (row) { newest = Math.max(newest, Number(row.getAttribute("data-id"))); });
          localTimes(body);
          if (status && rows.length) { status.textContent = "Live: " + rows.length + " new event(s)."; }
          var none = document.getElementById("no-events");
          if (none && rows.length) { none.hidden = true; }
        })
        .catch(function (e) { if (status) { status.textContent = "Live: paused (" + e.message + "); retrying."; } })
        .then(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 3000);
  }
})();
