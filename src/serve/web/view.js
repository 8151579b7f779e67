// Dataset page: what the manifest holds, one trajectory's stored frames and labels, and the
// training sampler's pair for a seed (both clips, strategy, labels and masks).
"use strict";
let summary = null;

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function counts(obj) {
  return Object.entries(obj).map(([k, v]) => `${k}: ${v}`).join("; ");
}

async function init() {
  summary = await getJson("/ui/api/summary");
  $("dir").textContent = summary.dir;
  const st = $("sources");
  st.append(el("tr", {}, el("th", {}, "source"), el("th", {}, "trajectories"), el("th", {}, "frames"),
               el("th", {}, "quality labels"), el("th", {}, "tasks")));
  for (const [name, s] of Object.entries(summary.sources)) {
    st.append(el("tr", {}, el("td", {}, name), el("td", {}, String(s.trajectories)), el("td", {}, String(s.frames)),
                 el("td", {}, counts(s.quality)), el("td", { style: "text-align:left" }, counts(s.tasks))));
    $("source-filter").append(el("option", { value: name }, name));
  }
  $("source-filter").onchange = listTrajectories;
  $("pair-btn").onclick = () => showPair().catch((e) => setStatus("error", "error: " + e.message));
  listTrajectories();
}

function listTrajectories() {
  const src = $("source-filter").value, t = $("trajectories");
  t.innerHTML = "";
  t.append(el("tr", {}, el("th", {}, "id"), el("th", {}, "task"), el("th", {}, "quality"), el("th", {}, "frames")));
  for (const x of summary.trajectories) {
    if (src && x.data_source !== src) continue;
    const tr = el("tr", {}, el("td", {}, x.id), el("td", { style: "text-align:left" }, x.task),
                  el("td", {}, x.quality + (x.partial_success !== undefined ? ` (${x.partial_success})` : "")),
                  el("td", {}, String(x.num_frames)));
    tr.style.cursor = "pointer";
    tr.onclick = () => showTrajectory(x.id).catch((e) => ($("trajectory").textContent = "error: " + e.message));
    t.append(tr);
  }
}

function strip(thumbs, captions) {
  const d = el("div", { class: "strip" });
  thumbs.forEach((src, i) => d.append(el("figure", {}, el("img", { src }), el("figcaption", {}, captions[i]))));
  return d;
}

async function showTrajectory(id) {
  const t = await getJson("/ui/api/trajectory?id=" + encodeURIComponent(id));
  const box = $("trajectory");
  box.innerHTML = "";
  box.append(el("div", {}, el("b", {}, t.id), ` — "${t.task}", ${t.data_source}, ${t.quality}, ` +
                `${t.num_frames} video frames, ${t.stored_frames} stored`));
  box.append(strip(t.thumbs, t.video_frame_indices.map(String)));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  box.append(svg, el("div", { class: "muted" }, t.gt_note));
  const xs = t.thumbs.map((_, i) => i);
  drawChart(svg, xs, [{ name: "progress label", color: "#2ca02c", values: t.gt_progress }], xs.length - 1, -1);
}

function clipBox(name, c) {
  const box = el("div", { class: "clip" });
  box.append(el("div", {}, el("b", {}, name), ` ${c.trajectory_id} (${c.data_source}, ${c.quality}), ` +
                `${c.valid_frames} valid frames, progress mask ${c.progress_mask}`));
  box.append(strip(c.thumbs, c.frame_indices.map((f, i) => `${f} (v${c.video_frame_indices[i]})`)));
  const t = el("table", {});
  const row = (label, vals, digits) =>
    t.append(el("tr", {}, el("th", {}, label), ...vals.map((v) => el("td", {}, digits ? v.toFixed(digits) : String(v)))));
  row("stored frame", c.frame_indices);
  row("progress", c.progress, 3);
  row("success", c.success, 0);
  row("success mask", c.success_mask, 0);
  box.append(t);
  return box;
}

async function showPair() {
  setStatus("busy", "sampling...");
  const p = await getJson("/ui/api/pair?seed=" + encodeURIComponent($("seed").value));
  const box = $("pair");
  box.innerHTML = "";
  box.append(el("div", {}, `strategy `, el("b", {}, p.strategy), `, task "${p.task}", preference ${p.preference} ` +
                `(${p.preference > 0.5 ? "A" : "B"} is the chosen trajectory)` + (p.different_task ? ", different task" : "")));
  box.append(clipBox("A", p.a), clipBox("B", p.b));
  setStatus("done", "seed " + p.seed);
}

init().catch((e) => ($("dir").textContent = "error: " + e.message));
