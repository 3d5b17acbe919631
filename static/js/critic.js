// The critic dashboard: the threshold marker on the PR and ROC curves follows the slider
// at once, without asking the server (the panel below still comes from the server).
// Each chart carries its points as [x, y, threshold] in chart units, sorted by threshold;
// the marker sits between the two computed thresholds around the slider's value, as
// critic.charts.point_at places it on the server.
(function () {
  "use strict";

  function pointAt(points, threshold) {
    if (!points.length) return null;
    let i = 0;
    while (i < points.length && points[i][2] < threshold) i++;
    if (i === 0) return points[0];
    if (i >= points.length) return points[points.length - 1];
    const a = points[i - 1];
    const b = points[i];
    const share = (threshold - a[2]) / (b[2] - a[2] || 1);
    return [a[0] + share * (b[0] - a[0]), a[1] + share * (b[1] - a[1])];
  }

  function place(svg, threshold) {
    const marker = svg.querySelector(".threshold-marker");
    if (!marker) return;
    if (!svg._points) svg._points = JSON.parse(svg.dataset.thresholdPoints || "[]");
    const at = pointAt(svg._points, threshold);
    if (!at) return;
    const x = at[0].toFixed(1);
    const y = at[1].toFixed(1);
    const circle = marker.querySelector(".marker");
    circle.setAttribute("cx", x);
    circle.setAttribute("cy", y);
    const guideX = marker.querySelector(".guide-x");
    guideX.setAttribute("x1", x);
    guideX.setAttribute("x2", x);
    guideX.setAttribute("y2", y);
    const guideY = marker.querySelector(".guide-y");
    guideY.setAttribute("y1", y);
    guideY.setAttribute("x2", x);
    guideY.setAttribute("y2", y);
    const label = marker.querySelector(".marker-label");
    label.setAttribute("x", x);
    label.setAttribute("y", y);
    // Left of the dot near the right edge, below it near the top (as label_place does).
    const left = at[0] > parseFloat(svg.dataset.plotRight) - 80;
    const below = at[1] < parseFloat(svg.dataset.plotTop) + 20;
    label.setAttribute("text-anchor", left ? "end" : "start");
    label.setAttribute("dx", left ? "-9" : "9");
    label.setAttribute("dy", below ? "18" : "-9");
    label.textContent = "t = " + threshold.toFixed(3);
    const title = circle.querySelector("title");
    if (title) title.textContent = "threshold " + threshold.toFixed(3);
  }

  document.addEventListener("input", function (event) {
    if (event.target.id !== "threshold-slider") return;
    const threshold = parseFloat(event.target.value);
    if (Number.isNaN(threshold)) return;
    document.querySelectorAll("svg[data-threshold-points]").forEach(function (svg) {
      place(svg, threshold);
    });
  });
})();
