"""The page's own style and script, inlined into every report (the file must open offline).

The script draws the charts from the JSON the page embeds, filters the records table, and
shows one customer's history. It writes text with ``textContent`` only, never ``innerHTML``:
every value comes from a customer extract or a provider's answer. After drawing, each chart's
element carries ``data-totals`` (the sum of each bar series plotly drew) and the body
``data-ready``: what the report's browser test reads back through the DOM.
"""

from __future__ import annotations

CSS = """
:root { --fg: #1d2433; --muted: #5b6476; --line: #d9dde5; --bad: #b42318; --ok: #067647; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1360px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 4px; }
p.meta, p.caption, .note { color: var(--muted); margin: 2px 0 8px; }
nav a { margin-right: 14px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 24px; }
.grid figure { margin: 0; min-width: 0; }
.grid figure.wide { grid-column: 1 / -1; }
.plot { width: 100%; height: 340px; }
.tiles { display: flex; gap: 12px; flex-wrap: wrap; margin: 10px 0; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.tile b { display: block; font-size: 20px; }
.scroll { max-height: 480px; overflow: auto; border: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; min-width: 260px; }
th { position: sticky; top: 0; background: #f4f6f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fff5f3; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
input[type=search] { font: inherit; padding: 4px 8px; width: 420px; max-width: 100%; }
.before { color: var(--bad); } .after { color: var(--ok); }
"""

SCRIPT = r"""
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }
  function data(id) { return JSON.parse(byId(id).textContent); }

  // Charts: one plotly figure per .plot element, from the JSON beside it.
  var drawn = Array.prototype.map.call(document.querySelectorAll("div.plot"), function (div) {
    var fig = data("fig-" + div.dataset.key);
    var config = { displaylogo: false, responsive: true };
    return Plotly.newPlot(div, fig.data, fig.layout, config).then(function (gd) {
      var totals = {};
      gd.data.forEach(function (trace) {
        if (trace.type !== "bar") { return; }
        var sum = 0;
        for (var i = 0; i < trace.y.length; i++) { sum += Number(trace.y[i]) || 0; }
        totals[trace.name] = sum;
      });
      div.dataset.totals = JSON.stringify(totals);
    });
  });

  // The records table: a row shows when its text contains the filter (case-insensitive).
  var filter = byId("records-filter");
  var rows = Array.prototype.slice.call(byId("records-body").rows);
  function applyFilter() {
    var q = filter.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (row) {
      var hit = !q || row.textContent.toLowerCase().indexOf(q) >= 0;
      row.hidden = !hit;
      if (hit) { shown += 1; }
    });
    byId("records-shown").textContent = shown + " of " + rows.length + " rows shown";
    byId("records-shown").dataset.shown = String(shown);
  }
  filter.addEventListener("input", applyFilter);

  // The customer drill-down: history, and every field's before and after.
  var CELL_CLASS = { before: "before mono wrap", after: "after mono wrap", message: "wrap",
                     changed_fields: "wrap", drift_fields: "wrap" };
  var customers = data("customer-data");
  var input = byId("customer-input"), view = byId("customer-view");
  function table(headers, records, cls) {
    var t = document.createElement("table"), head = t.createTHead().insertRow();
    headers.forEach(function (h) {
      var th = document.createElement("th"); th.textContent = h; head.appendChild(th);
    });
    var body = t.createTBody();
    if (cls) { body.className = cls; }
    records.forEach(function (record) {
      var tr = body.insertRow();
      record.forEach(function (value, i) {
        var td = tr.insertCell();
        if (value === null || value === undefined) { value = ""; }
        td.textContent = Array.isArray(value) ? value.join(", ") : String(value);
        td.className = CELL_CLASS[headers[i]] || "";
      });
    });
    var box = document.createElement("div");
    box.className = "scroll";
    box.appendChild(t);
    return box;
  }
  function show(key) {
    view.textContent = "";
    var c = customers.records[key];
    var title = document.createElement("h3");
    view.appendChild(title);
    if (!c) {
      title.textContent = key ? "No record of " + key + " in these runs" : "";
      view.dataset.key = "";
      return;
    }
    title.textContent = key;
    view.dataset.key = key;
    var sub = document.createElement("h3");
    sub.textContent = "History";
    view.appendChild(sub);
    view.appendChild(table(customers.history_columns, c.history, "customer-history"));
    var changes = document.createElement("h3");
    changes.textContent = "Before \u2192 after";
    view.appendChild(changes);
    var note = document.createElement("p");
    note.className = "note";
    note.textContent = customers.changes_note;
    view.appendChild(note);
    view.appendChild(table(customers.changes_columns, c.changes, "customer-changes"));
  }
  input.addEventListener("change", function () { show(input.value.trim()); });
  input.addEventListener("input", function () {
    if (customers.records[input.value.trim()]) { show(input.value.trim()); }
  });

  // The address says what to show: #customer=KEY, #filter=TEXT (links in the tables use it).
  function fromHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    if (params.has("filter")) { filter.value = params.get("filter"); }
    applyFilter();
    var key = params.has("customer") ? params.get("customer") : input.dataset.default;
    input.value = key || "";
    show(key || "");
    if (params.has("customer")) { byId("customer").scrollIntoView(); }
    else if (params.has("filter")) { byId("records").scrollIntoView(); }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();

  Promise.all(drawn).then(function () {
    // Milliseconds from navigation to every chart drawn: the render time the README quotes.
    document.body.dataset.readyMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "true";
  },
                          function (e) { document.body.dataset.ready = "error: " + e; });
})();
"""
