// lakeline ui: a workflow execution's state graph, drawn as the Step Functions console draws it.
// The page embeds everything (workflow-data): the cytoscape elements, each state's entries per
// Map iteration and the Maps' iterations, so the static export draws it from file:// as well.
"use strict";
(function () {
  var data = lakelineData("workflow-data");
  var container = document.getElementById("workflow-graph");
  if (!data || !container) { return; }
  cytoscape.use(cytoscapeDagre);

  var COLOURS = { succeeded: "#2da44e", failed: "#cf222e", caught: "#e16f24", running: "#0969da",
                  aborted: "#6e5494", notrun: "#afb8c1" };
  var FILLS = { succeeded: "#dafbe1", failed: "#ffebe9", caught: "#fff1e5", running: "#ddf4ff",
                aborted: "#eee6ff", notrun: "#f6f8fa" };
  var WORDS = { succeeded: "succeeded", failed: "failed", caught: "caught or retried", running: "running",
                aborted: "aborted", notrun: "not reached" };
  var NO_OUTPUT = { failed: "the state failed", caught: "it failed and a Catch moved on",
                    running: "still running", aborted: "it was aborted", succeeded: "none", notrun: "not reached" };
  var BADGES = { succeeded: "ok", failed: "bad", running: "run", caught: "caught", aborted: "aborted",
                 notrun: "notrun" };

  // the Map iteration whose entries each Map's inner states show
  var selected = {};
  Object.keys(data.maps).forEach(function (path) { selected[path] = data.maps[path].selected; });

  function iterationOf(path) {
    var owner = data.states[path] && data.states[path].map;
    return owner ? (selected[owner] || "") : "";
  }
  function entriesOf(path) {
    var here = data.runs[iterationOf(path)] || {};
    return here[path] || [];
  }
  function statusOf(path) {
    var e = entriesOf(path);
    return e.length ? e[e.length - 1].status : "notrun";
  }

  data.elements.forEach(function (el) {
    if (el.data.source) { return; }
    var lines = String(el.data.label).split("\n");
    var longest = Math.max.apply(null, lines.map(function (l) { return l.length; }));
    // a state's box fits its label; a Map's or Parallel's (min-width, inside its padding) too
    el.data.w = el.classes === "compound" ? Math.max(40, longest * 6.6 - 60) : Math.max(90, longest * 7 + 28);
  });

  var cy = cytoscape({
    container: container,
    elements: data.elements,
    boxSelectionEnabled: false,
    style: [
      { selector: "node", style: {
        "label": "data(label)", "text-wrap": "wrap", "text-valign": "center", "text-halign": "center",
        "font-size": 12, "shape": "round-rectangle", "width": "data(w)", "height": 40,
        "background-color": function (n) { return FILLS[n.data("status")] || FILLS.notrun; },
        "border-width": 2, "border-color": function (n) { return COLOURS[n.data("status")] || COLOURS.notrun; },
        "color": "#1d232b" } },
      { selector: "node[kind = 'start'], node[kind = 'end']", style: {
        "shape": "ellipse", "width": 54, "height": 30, "font-size": 11, "background-color": "#eaeef2",
        "border-color": function (n) { return COLOURS[n.data("status")] || COLOURS.notrun; } } },
      { selector: "node.compound", style: {
        "text-valign": "top", "text-halign": "center", "text-margin-y": 36, "font-weight": 600,
        "padding": 40, "min-width": "data(w)", "background-opacity": 0.35, "border-style": "dashed" } },
      { selector: "node:selected", style: { "overlay-color": "#0b5cad", "overlay-opacity": 0.18, "overlay-padding": 5 } },
      { selector: "edge", style: {
        "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5, "line-color": "#8c959f",
        "target-arrow-color": "#8c959f", "label": "data(label)", "font-size": 10, "color": "#57606a",
        "text-background-color": "#fff", "text-background-opacity": 0.9, "text-background-padding": 2 } },
      { selector: "edge[kind = 'catch']", style: {
        "line-style": "dashed", "line-color": "#e16f24", "target-arrow-color": "#e16f24" } }
    ],
    layout: { name: "dagre", rankDir: "TB", nodeSep: 30, rankSep: 36, padding: 16 }
  });
  window.workflowGraph = cy;

  function recolour() {
    cy.batch(function () {
      cy.nodes("[kind = 'state']").forEach(function (n) { n.data("status", statusOf(n.id())); });
    });
  }
  recolour();

  var shown = null;
  var panel = document.getElementById("state-detail");
  function text(id, value) { document.getElementById(id).textContent = value; }

  function show(path, index) {
    var state = data.states[path];
    var entries = entriesOf(path);
    shown = path;
    panel.hidden = false;
    document.getElementById("state-hint").hidden = true;
    var i = index === undefined ? entries.length - 1 : index;
    var entry = entries[i];
    var status = entry ? entry.status : "notrun";
    text("state-name", state.name);
    text("state-type", state.type);
    var badge = document.getElementById("state-status");
    badge.className = "badge " + BADGES[status];
    badge.textContent = WORDS[status];
    badge.style.display = data.mode === "definition" ? "none" : "";
    var where = [];
    var iteration = iterationOf(path);
    if (iteration) { where.push("iteration " + labelOf(state.map, iteration)); }
    if (entry) {
      where.push("entered " + entry.entered + (entry.exited ? ", exited " + entry.exited : ""));
      if (entry.failures) { where.push(entry.failures + " failed attempt(s)"); }
    } else {
      where.push(iteration === "" && state.map ? "its Map did not run" : "not reached");
    }
    text("state-where", data.mode === "definition" ? (state.comment || "") : where.join(" · "));
    var nav = document.getElementById("state-entries-nav");
    var select = document.getElementById("state-entry");
    nav.hidden = entries.length < 2;
    select.innerHTML = "";
    entries.forEach(function (e, k) {
      var opt = document.createElement("option");
      opt.value = String(k);
      opt.textContent = (k + 1) + " of " + entries.length + " (" + WORDS[e.status] + ", event " + e.event + ")";
      opt.selected = k === i;
      select.appendChild(opt);
    });
    var error = document.getElementById("state-error");
    error.hidden = !(entry && entry.error);
    var why = entry && entry.error ? entry.error + (entry.cause ? ": " + entry.cause : "") : "";
    if (why && status === "caught") { why = (entry.exited ? "retried after " : "caught: ") + why; }
    error.textContent = why;
    text("state-asl", state.asl);
    text("state-input", entry && entry.input !== null ? entry.input : "—");
    text("state-output", entry && entry.output !== null ? entry.output
      : (entry ? "— (no output: " + NO_OUTPUT[status] + ")" : "—"));
    cy.nodes().unselect();
    cy.getElementById(path).select();
  }

  function labelOf(map, key) {
    var found = (data.maps[map] ? data.maps[map].iterations : []).filter(function (it) { return it.key === key; });
    return found.length ? found[0].label : key;
  }

  cy.on("tap", "node[kind = 'state']", function (evt) { show(evt.target.id()); });
  document.getElementById("state-entry").addEventListener("change", function (evt) {
    if (shown !== null) { show(shown, Number(evt.target.value)); }
  });
  document.querySelectorAll("select.iteration").forEach(function (select) {
    select.addEventListener("change", function () {
      selected[select.dataset.map] = select.value;
      recolour();
      if (shown !== null) { show(shown); }
    });
  });
  window.workflowShow = show;
})();
