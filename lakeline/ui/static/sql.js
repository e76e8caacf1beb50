// lakeline ui, the SQL console: Ctrl+Enter runs the query; the result's chart (bar or line,
// chosen by the server from the column types) drawn with Chart.js as window.sqlChart.
"use strict";
(function () {
  var form = document.getElementById("sql-form");
  var text = document.getElementById("sql-query");
  if (form && text) {
    text.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.submit();
      }
    });
  }
  window.sqlChart = null;
  var data = lakelineData("sql-data");
  var canvas = document.getElementById("sql-chart");
  if (!data || !data.chart || !canvas) { return; }
  var colours = ["#0b5cad", "#1a7f37", "#bc4c00", "#8250df", "#cf222e"];
  var chart = data.chart;
  window.sqlChart = new Chart(canvas, {
    type: chart.type,
    data: {
      labels: chart.labels,
      datasets: chart.datasets.map(function (d, i) {
        return { label: d.label, data: d.data, borderColor: colours[i % colours.length],
                 backgroundColor: colours[i % colours.length] + (chart.type === "bar" ? "cc" : "33"),
                 pointRadius: chart.labels.length > 100 ? 0 : 2, spanGaps: true };
      })
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: chart.datasets.length > 1 } },
      scales: { y: { beginAtZero: chart.type === "bar" } }
    }
  });
})();
