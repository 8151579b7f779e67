// Shared by the reward and dataset pages: DOM helpers and an SVG line chart.
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}
async function getJson(url, init) {
  const r = await fetch(url, init);
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}
// series: [{name, color, values, dashed}] over xs; y in [0, 1]; cursor: index into xs or -1.
function drawChart(svg, xs, series, xmax, cursor) {
  const W = 640, H = 260, L = 40, R = 10, T = 10, B = 30, NS = "http://www.w3.org/2000/svg";
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  svg.innerHTML = "";
  const X = (x) => L + ((W - L - R) * x) / Math.max(1, xmax);
  const Y = (y) => H - B - (H - B - T) * Math.min(1, Math.max(0, y));
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  for (let i = 0; i <= 4; i++) {
    add("line", { x1: L, x2: W - R, y1: Y(i / 4), y2: Y(i / 4), stroke: "#e4e4e4" });
    add("text", { x: 4, y: Y(i / 4) + 4, "font-size": 10 }, (i / 4).toFixed(2));
  }
  for (let i = 0; i <= 5; i++) {
    const f = Math.round((xmax * i) / 5);
    add("text", { x: X(f) - 6, y: H - 12, "font-size": 10 }, String(f));
  }
  add("text", { x: W / 2 - 14, y: H - 1, "font-size": 10 }, "frame");
  let lx = L + 8;
  for (const s of series) {
    if (!s.values) continue;
    const pts = xs.map((x, i) => `${X(x)},${Y(s.values[i])}`).join(" ");
    add("polyline", { points: pts, fill: "none", stroke: s.color, "stroke-width": 2,
                      "stroke-dasharray": s.dashed ? "5 3" : "none" });
    xs.forEach((x, i) => add("circle", { cx: X(x), cy: Y(s.values[i]), r: 2.5, fill: s.color }));
    add("rect", { x: lx, y: T + 4, width: 12, height: 4, fill: s.color });
    add("text", { x: lx + 16, y: T + 10, "font-size": 11 }, s.name);
    lx += 24 + 7 * s.name.length;
  }
  if (cursor >= 0 && cursor < xs.length)
    add("line", { x1: X(xs[cursor]), x2: X(xs[cursor]), y1: T, y2: H - B, stroke: "#d62728", "stroke-width": 1 });
}
function download(a, name, text, type) {
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
}
