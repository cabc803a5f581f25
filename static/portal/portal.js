/* DATAS portal: live fragments, lazy fragments and Plotly plots fed by JSON endpoints.
   Plain JavaScript, no build step; Plotly is served by this server (static/vendor/plotly.min.js). */
(function () {
  "use strict";
  var DARK = {paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
              font: {color: "#e6e9ef", size: 12}, margin: {l: 56, r: 24, t: 10, b: 56},
              legend: {orientation: "h", y: -0.3}, xaxis: {gridcolor: "#2a3550"}, yaxis: {gridcolor: "#2a3550"}};

  function merge(a, b) {
    var out = {}, k;
    for (k in a) out[k] = a[k];
    for (k in b) out[k] = (typeof b[k] === "object" && b[k] && !Array.isArray(b[k]) && typeof a[k] === "object")
      ? merge(a[k], b[k]) : b[k];
    return out;
  }

  function fetchText(url) {
    return fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}}).then(function (r) {
      if (!r.ok) throw new Error(r.status + " " + r.statusText);
      return r.text();
    });
  }

  function draw(el, figure) {
    if (!window.Plotly) { el.textContent = "The plotting library did not load."; return; }
    var points = (figure.data || []).reduce(function (n, t) { return n + ((t.x || []).length); }, 0);
    if (points === 0) {
      el.classList.add("empty"); el.textContent = el.dataset.emptyText || "Nothing to plot yet."; return;
    }
    el.portalFigure = figure;
    el.portalNarrow = isNarrow(el);
    window.Plotly.newPlot(el, figure.data, layoutFor(el, figure), {responsive: true, displaylogo: false});
    el.dataset.drawn = "1";
    if (el.dataset.linkPoints) {  // points carrying a URL in customdata open it on click
      el.on("plotly_click", function (event) {
        var url = event.points && event.points[0] && event.points[0].customdata;
        if (typeof url === "string" && url.charAt(0) === "/") window.location.href = url;
      });
    }
  }

  function isNarrow(el) { return (el.clientWidth || window.innerWidth) < 600; }

  // On a phone a long legend goes below the plot, one entry a line, and the figure grows to hold
  // it (Plotly would otherwise squeeze it into a scrolling box over the axis title).
  function layoutFor(el, figure) {
    var layout = merge(DARK, figure.layout || {});
    var entries = (figure.data || []).filter(function (t) {  // what Plotly lists: not heatmaps, not empty traces
      return t.showlegend !== false && t.type !== "heatmap" && (t.x || []).length > 0;
    });
    el.style.minHeight = "";
    if (!isNarrow(el) || entries.length < 3 || layout.showlegend === false) return layout;
    var groups = {};
    entries.forEach(function (t) { if (t.legendgroup) groups[t.legendgroup] = true; });
    var legendPx = 21 * (entries.length + Object.keys(groups).length) + 14;
    el.style.minHeight = (300 + legendPx) + "px";  // the box grows with the figure, never under the next block
    return merge(layout, {height: 300 + legendPx, margin: {b: 64 + legendPx},
                          legend: {orientation: "v", x: 0, xanchor: "left", y: 0, yref: "container",
                                   yanchor: "bottom"}});
  }

  function relayoutOnWidth() {
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        document.querySelectorAll("[data-drawn]").forEach(function (el) {
          if (el.portalFigure && isNarrow(el) !== el.portalNarrow) {
            el.portalNarrow = isNarrow(el);
            window.Plotly.react(el, el.portalFigure.data, layoutFor(el, el.portalFigure));
          }
        });
      }, 120);
    });
  }

  function inlineFigure(el) {
    var data = JSON.parse(document.getElementById(el.dataset.plotJson).textContent);
    if (el.dataset.plotKind === "horizon") {
      var floor = parseFloat(el.dataset.floor || "0");
      var pts = data.slice().sort(function (a, b) { return a[0] - b[0]; });
      return {data: [
        {type: "scatter", mode: "lines", name: "horizon", x: pts.map(function (p) { return p[0]; }),
         y: pts.map(function (p) { return p[1]; }), fill: "tozeroy", line: {shape: "linear"}},
        {type: "scatter", mode: "lines", name: "altitude floor", x: [0, 360], y: [floor, floor],
         line: {dash: "dash"}}],
        layout: {xaxis: {range: [0, 360], title: {text: "azimuth (deg, N=0, E=90)"}, dtick: 45},
                 yaxis: {range: [0, 90], title: {text: "altitude (deg)"}}}};
    }
    if (el.dataset.plotKind === "footprint") {
      var c = data.corners.concat([data.corners[0]]);
      var traces = [{type: "scatter", mode: "lines", name: "frame", x: c.map(function (p) { return p[0]; }),
                     y: c.map(function (p) { return p[1]; }), fill: "toself"},
                    {type: "scatter", mode: "markers", name: "centre", x: [data.centre[0]], y: [data.centre[1]]}];
      if (data.target) traces.push({type: "scatter", mode: "markers", name: data.target_name || "target",
                                    x: [data.target[0]], y: [data.target[1]], marker: {symbol: "x", size: 10}});
      return {data: traces, layout: {xaxis: {autorange: "reversed", title: {text: "RA (deg)"}},
                                     yaxis: {title: {text: "Dec (deg)"}, scaleanchor: "x"}}};
    }
    return {data: []};
  }

  function plots() {
    document.querySelectorAll("[data-plot-url]").forEach(function (el) {
      fetch(el.dataset.plotUrl, {credentials: "same-origin"}).then(function (r) { return r.json(); })
        .then(function (fig) { draw(el, fig); })
        .catch(function (e) { el.textContent = "Could not load the plot: " + e.message; });
    });
    document.querySelectorAll("[data-plot-json]").forEach(function (el) { draw(el, inlineFigure(el)); });
  }

  function lazy() {
    document.querySelectorAll("[data-load-url]").forEach(function (el) {
      fetchText(el.dataset.loadUrl).then(function (html) { el.innerHTML = html; })
        .catch(function (e) { el.textContent = "unavailable (" + e.message + ")"; });
    });
  }

  function poll() {
    document.querySelectorAll("[data-poll-url]").forEach(function (el) {
      var seconds = parseFloat(el.dataset.pollSeconds || "15");
      setInterval(function () {
        if (document.hidden) return;  // no traffic from a background tab
        fetchText(el.dataset.pollUrl).then(function (html) { el.innerHTML = html; }).catch(function () {});
      }, seconds * 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { plots(); lazy(); poll(); relayoutOnWidth(); });
})();
