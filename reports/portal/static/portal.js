// Kvalitet portal: draws the run charts from the page's JSON; never shows a page from
// the back-forward cache (after logout the back button must show no data).
(function () {
  "use strict";
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); }
  });
  var month = document.getElementById("portal-month");
  if (month) {
    month.addEventListener("change", function () {
      var parts = window.location.pathname.split("/").slice(0, 4);
      window.location.href = parts.join("/") + "/" + month.value;
    });
  }
  var source = document.getElementById("chart-data");
  var target = document.getElementById("charts");
  if (!source || !target) { return; }
  var charts = JSON.parse(source.textContent);
  var colours = ["#0072B2", "#E69F00", "#009E73"];
  function draw() {
    charts.forEach(function (chart) {
      var box = document.createElement("div");
      box.className = "chart";
      var title = document.createElement("h3");
      title.textContent = chart.title;
      var signal = document.createElement("p");
      signal.textContent = "Signal: " + chart.signal;
      var plot = document.createElement("div");
      plot.className = "plot";
      box.appendChild(title); box.appendChild(plot); box.appendChild(signal);
      target.appendChild(box);
      var traces = chart.traces.map(function (t, i) {
        return {type: "scatter", mode: "lines+markers", name: t.name, x: t.x, y: t.y,
                line: {color: colours[i % colours.length]}};
      });
      var shapes = chart.standard === null ? [] : [{type: "line", xref: "paper", x0: 0, x1: 1,
        y0: chart.standard, y1: chart.standard, line: {dash: "dash", color: "#CC79A7"}}];
      window.Plotly.newPlot(plot, traces, {margin: {l: 45, r: 10, t: 10, b: 40},
        yaxis: {title: {text: chart.unit}}, shapes: shapes, legend: {orientation: "h"}}, {displaylogo: false, responsive: true});
    });
  }
  var script = document.createElement("script");
  script.src = "/static/plotly.min.js";
  script.onload = draw;
  document.head.appendChild(script);
})();
