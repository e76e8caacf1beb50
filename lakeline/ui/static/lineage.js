// lakeline ui: a lineage root as a graph (cytoscape + dagre), collapsed by level.
// Nodes of the ledger (file, gate, batches) and small groups are drawn one by one; a large group
// of one action under one parent is one node: a click expands it into its members (embedded in
// the page, laid out as a grid inside the group's box) and another click collapses it.
"use strict";
(function () {
  var data = window.lakelineData("lineage-data");
  var container = document.getElementById("lineage-graph");
  if (!data || !container) { return; }
  var links = window.lakelineData("lineage-links") || {};
  var details = document.getElementById("node-details");
  cytoscape.use(cytoscapeDagre);
  var scriptStarted = performance.now();

  var MEMBER = 14, STEP = 20, HEADER = 34, PAD = 12;
  var groups = {};
  data.groups.forEach(function (g) { groups[g.id] = g; });

  function base(path) {
    if (!path) { return "-"; }
    var parts = String(path).replace(/\/+$/, "").split("/");
    return parts[parts.length - 1] || path;
  }
  function boxWidth(lines) {
    var longest = Math.max.apply(null, lines.map(function (l) { return l.length; }));
    return Math.max(70, Math.min(260, longest * 6.4 + 18));
  }
  function nodeElement(n) {
    // a failure names its node (a record id) and reason; other nodes where they wrote
    var label = n.action_taken + "\n" + (n.failed ? n.node_id + (n.attrs && n.attrs.reason ? "\n" + n.attrs.reason : "")
                                                 : base(n.storage_location));
    return { group: "nodes", classes: "node" + (n.failed ? " failed" : ""),
             data: { id: n.node_id, kind: "node", label: label, w: boxWidth(label.split("\n")),
                     h: 14 + 12 * label.split("\n").length,
                     action: n.action_taken, location: n.storage_location, attrs: n.attrs || {},
                     parent_id: n.parent_id, recorded_at: n.recorded_at, failed: !!n.failed } };
  }
  function groupLabel(g, expanded) {
    var head = g.count.toLocaleString("en") + " \u00d7 " + g.action_taken;
    if (!expanded) { return head + "\nclick to expand"; }
    var shown = g.embedded < g.count ? " (" + g.embedded.toLocaleString("en") + " drawn)" : "";
    return head + shown + " \u2014 click to collapse";
  }
  function groupElement(g) {
    var label = groupLabel(g, false);
    return { group: "nodes", classes: "group" + (g.failed ? " failed" : ""),
             data: { id: g.id, kind: "group", label: label, w: boxWidth(label.split("\n")), h: 40,
                     action: g.action_taken, count: g.count, parent_id: g.parent_id, failed: !!g.failed } };
  }

  var elements = data.nodes.map(nodeElement).concat(data.groups.map(groupElement));
  data.edges.forEach(function (e, i) {
    elements.push({ group: "edges", data: { id: "e" + i, source: e[0], target: e[1] } });
  });

  var cy = cytoscape({
    container: container,
    elements: elements,
    minZoom: 0.05,
    maxZoom: 3,
    style: [
      { selector: "node", style: {
        "shape": "round-rectangle", "width": "data(w)", "height": "data(h)", "label": "data(label)",
        "text-wrap": "wrap", "text-valign": "center", "text-halign": "center", "font-size": 10,
        "background-color": "#eaf2fb", "border-width": 1, "border-color": "#0b5cad", "color": "#1d232b",
        "min-zoomed-font-size": 4 } },
      { selector: "node.group", style: {
        "background-color": "#f6f8fa", "border-style": "dashed", "border-color": "#5f6b7a", "color": "#5f6b7a" } },
      { selector: "node.group.expanded", style: { "text-valign": "top", "text-margin-y": 26, "background-opacity": 0.5 } },
      { selector: "node.failed", style: { "background-color": "#ffebe9", "border-color": "#cf222e", "color": "#cf222e",
                                          "border-width": 2 } },
      { selector: "node.member", style: {
        "shape": "ellipse", "width": MEMBER, "height": MEMBER, "label": "", "background-color": "#7aa7d6",
        "border-width": 0 } },
      { selector: "node.member.failed", style: { "background-color": "#cf222e" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#f0a000" } },
      { selector: "edge", style: {
        "width": 1.2, "line-color": "#9fb3c8", "curve-style": "bezier", "target-arrow-shape": "triangle",
        "target-arrow-color": "#9fb3c8", "arrow-scale": 0.8 } }
    ]
  });

  function placeMembers(group) {
    var g = groups[group.id()];
    var cols = Math.max(1, Math.ceil(Math.sqrt(g.embedded * 2.5)));
    var p = group.position(), w = group.data("w"), h = group.data("h");
    var left = p.x - w / 2 + PAD + MEMBER / 2, top = p.y - h / 2 + HEADER + MEMBER / 2;
    var i = 0;
    cy.batch(function () {
      cy.nodes(".member").filter(function (m) { return m.data("group") === group.id(); }).forEach(function (m) {
        m.position({ x: left + (i % cols) * STEP, y: top + Math.floor(i / cols) * STEP });
        i += 1;
      });
    });
  }

  function layout() {
    cy.elements().not(".member").layout({
      name: "dagre", rankDir: "LR", nodeSep: 10, rankSep: 60, edgeSep: 8, fit: false, animate: false
    }).run();
    cy.nodes(".group.expanded").forEach(placeMembers);
    cy.fit(cy.nodes().not(".member"), 24);  // members lie inside their group's box
    if (cy.zoom() > 1.25) { cy.zoom(1.25); cy.center(); }  // a small root: not blown up
  }

  function expand(group) {
    var g = groups[group.id()];
    if (!g.embedded) { return; }
    var started = performance.now();
    var cols = Math.max(1, Math.ceil(Math.sqrt(g.embedded * 2.5)));
    var rows = Math.ceil(g.embedded / cols);
    var label = groupLabel(g, true);
    group.data({ label: label, w: Math.max(boxWidth([label]), cols * STEP + 2 * PAD),
                 h: rows * STEP + HEADER + PAD });
    group.addClass("expanded");
    var failed = !!g.failed;
    cy.add(g.members.map(function (m) {
      return { group: "nodes", classes: "member" + (failed ? " failed" : ""),
               data: { id: m[0], kind: "member", group: g.id, label: "", action: g.action_taken,
                       location: m[1] === null ? g.location : m[1], attrs: m[2] || {}, parent_id: g.parent_id,
                       failed: failed } };
    }));
    layout();
    window.lineageExpandMs = performance.now() - started;
  }

  function collapse(group) {
    var g = groups[group.id()];
    cy.remove(cy.nodes(".member").filter(function (m) { return m.data("group") === g.id; }));
    var label = groupLabel(g, false);
    group.data({ label: label, w: boxWidth(label.split("\n")), h: 40 });
    group.removeClass("expanded");
    layout();
  }

  function row(dl, term, value, mono) {
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value === undefined || value === null || value === "" ? "-" : String(value);
    if (mono) { dd.className = "mono"; }
    dl.appendChild(dt); dl.appendChild(dd);
    return dd;
  }

  function show(node) {
    var d = node.data();
    details.textContent = "";
    var h = document.createElement("h3");
    h.textContent = d.kind === "group" ? d.count.toLocaleString("en") + " \u00d7 " + d.action : d.action;
    if (d.failed) { h.className = "failed-title"; h.style.color = "#cf222e"; }
    details.appendChild(h);
    var dl = document.createElement("dl");
    details.appendChild(dl);
    if (d.kind === "group") {
      var g = groups[d.id];
      row(dl, "children of", g.parent_id, true);
      row(dl, "nodes", g.count.toLocaleString("en"));
      row(dl, "drawn when expanded", g.embedded.toLocaleString("en"));
      row(dl, "location", g.location, true);
      var note = document.createElement("p");
      note.className = "muted";
      note.textContent = node.hasClass("expanded") ? "Click the box again to collapse it; click a member for its details."
        : (g.embedded ? "Click again to collapse once expanded." : "Its members are not embedded in this page: `lakeline lineage show " + data.root_id + " --fanout 0`.");
      details.appendChild(note);
      return;
    }
    row(dl, "node", d.id, true);
    row(dl, "parent", d.parent_id, true);
    row(dl, "location", d.location, true);
    if (d.recorded_at) { row(dl, "recorded", d.recorded_at); }
    row(dl, "status", d.failed ? "failed" : "ok");
    var keys = Object.keys(d.attrs || {});
    if (keys.length) {
      var pre = document.createElement("pre");
      pre.className = "attrs";
      pre.textContent = JSON.stringify(d.attrs, null, 2);
      details.appendChild(pre);
    }
    if (links.trace) {
      var a = document.createElement("a");
      a.href = links.trace + "?" + new URLSearchParams({ node: d.id, root: data.root_id }).toString();
      a.textContent = "trace it back to its file";
      a.id = "trace-link";
      details.appendChild(a);
    }
  }

  cy.on("tap", "node", function (event) {
    var node = event.target;
    if (node.data("kind") === "group") {
      if (node.hasClass("expanded")) { collapse(node); } else { expand(node); }
    }
    show(node);
  });

  layout();
  window.lineageGraph = cy;
  window.lineageDrawMs = performance.now();  // from navigation start
  window.lineageScriptMs = window.lineageDrawMs - scriptStarted;  // building and laying out the graph
  container.dataset.drawn = String(cy.nodes().length);
})();
