// lakeline ui: the pass rates of the quality results over time (Chart.js), one line per table
// or pipeline, one point per result; a click on a point opens that result.
"use strict";
(function () {
  var data = window.lakelineData("quality-data");
  var canvas = document.getElementById("quality-chart");
  if (!data || !canvas) { return; }
  var colours = ["#0b5cad", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#0a7480", "#9a6700", "#57606a"];
  var datasets = data.datasets.map(function (d, i) {
    var colour = colours[i % colours.length];
    return { label: d.label, data: d.data, borderColor: colour, backgroundColor: colour, spanGaps: true,
             pointRadius: 4, pointHoverRadius: 6, tension: 0 };
  });
  window.qualityChart = new Chart(canvas, {
    type: "line",
    data: { labels: data.labels, datasets: datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "nearest", intersect: true },
      scales: {
        y: { min: 0, max: 100, title: { display: true, text: "rules passed (%)" } },
        x: { ticks: { autoSkip: true, maxRotation: 60, minRotation: 30, font: { size: 10 } } }
      },
      plugins: {
        tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + c.parsed.y + " %"; } } },
        legend: { position: "bottom" }
      },
      onClick: function (event, elements) {
        if (!elements.length) { return; }
        var url = data.urls[elements[0].index];
        if (url) { window.location.href = url; }
      }
    }
  });
})();
