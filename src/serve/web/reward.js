// Reward page: scores an uploaded video or a --data trajectory through POST /score and shows the
// frames, progress and P(success) (and the ground-truth label when there is one) in sync.
"use strict";
let result = null, cursor = 0;

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function init() {
  const info = await getJson("/ui/api/info");
  $("model").textContent = info.model;
  for (const t of info.tasks) $("tasks").append(el("option", { value: t }));
  for (const t of info.trajectories)
    $("trajectory").append(el("option", { value: t.id }, `${t.id} (${t.quality}, ${t.num_frames} frames)`));
  $("trajectory").onchange = () => {
    const t = info.trajectories.find((x) => x.id === $("trajectory").value);
    if (t && !$("task").value) $("task").value = t.task;
  };
  $("score-btn").onclick = () => score().catch((e) => setStatus("error", "error: " + e.message));
  $("scrubber").oninput = () => show(Number($("scrubber").value));
}

async function score() {
  const task = $("task").value.trim(), mode = $("mode").value, id = $("trajectory").value;
  if (!task) throw new Error("type or pick a task");
  setStatus("busy", "scoring...");
  let request, thumbsOf, gt = null, source, note = "";
  if (id) {
    const t = await getJson("/ui/api/trajectory?raw=1&id=" + encodeURIComponent(id));
    request = { task, mode, frames: t.raw, shape: t.shape };
    thumbsOf = async (idx) => idx.map((i) => t.thumbs[i]);
    gt = t.gt_progress;
    note = t.gt_note;
    source = id;
  } else {
    const file = $("video-file").files[0];
    if (!file) throw new Error("choose a video file or a trajectory");
    const bytes = await file.arrayBuffer();
    request = { task, mode, video: base64(bytes) };
    thumbsOf = async (idx) =>
      (await getJson("/ui/api/frames?indices=" + idx.join(","), { method: "POST", body: bytes })).thumbs;
    source = file.name;
  }
  const s = await getJson("/score", { method: "POST", body: JSON.stringify(request) });
  const thumbs = await thumbsOf(s.frame_indices);
  result = { source, task, mode, frame_indices: s.frame_indices, progress: s.progress, success: s.success,
             ground_truth: gt ? s.frame_indices.map((i) => gt[i]) : null };
  render(thumbs, note);
  setStatus("done", `scored ${s.progress.length} values`);
}

function render(thumbs, note) {
  $("result").hidden = false;
  const n = result.progress.length;
  $("scrubber").max = n - 1;
  $("gt-note").textContent = note || "";
  const strip = $("strip");
  strip.innerHTML = "";
  thumbs.forEach((src, i) => {
    const img = el("img", { src, title: "frame " + result.frame_indices[i] });
    img.onclick = () => show(i);
    strip.append(el("figure", {}, img, el("figcaption", {}, String(result.frame_indices[i]))));
  });
  result.thumbs = thumbs;
  const table = $("values");
  table.innerHTML = "";
  const head = el("tr", {}, el("th", {}, "frame"), el("th", {}, "progress"), el("th", {}, "P(success)"));
  if (result.ground_truth) head.append(el("th", {}, "ground truth"));
  table.append(head);
  for (let i = 0; i < n; i++) {
    const tr = el("tr", { "data-frame": result.frame_indices[i] }, el("td", {}, String(result.frame_indices[i])),
                  el("td", { class: "progress" }, String(result.progress[i])),
                  el("td", { class: "success" }, String(result.success[i])));
    if (result.ground_truth) tr.append(el("td", {}, String(result.ground_truth[i])));
    tr.onclick = () => show(i);
    table.append(tr);
  }
  download($("dl-json"), "scores.json", JSON.stringify({ source: result.source, task: result.task, mode: result.mode,
    frame_indices: result.frame_indices, progress: result.progress, success: result.success,
    ground_truth: result.ground_truth }, null, 1), "application/json");
  let csv = "frame,progress,success" + (result.ground_truth ? ",ground_truth" : "") + "\n";
  for (let i = 0; i < n; i++)
    csv += [result.frame_indices[i], result.progress[i], result.success[i]]
      .concat(result.ground_truth ? [result.ground_truth[i]] : []).join(",") + "\n";
  download($("dl-csv"), "scores.csv", csv, "text/csv");
  show(n - 1);
}

function show(i) {
  cursor = i;
  $("scrubber").value = i;
  $("frame").src = result.thumbs[i];
  $("frame-info").textContent =
    `frame ${result.frame_indices[i]}: progress ${result.progress[i].toFixed(3)}, P(success) ${result.success[i].toFixed(3)}` +
    (result.ground_truth ? `, ground truth ${result.ground_truth[i].toFixed(3)}` : "");
  const xmax = Math.max(...result.frame_indices, 1);
  drawChart($("chart"), result.frame_indices, [
    { name: "progress", color: "#1f77b4", values: result.progress },
    { name: "P(success)", color: "#d62728", values: result.success, dashed: true },
    { name: "ground truth", color: "#2ca02c", values: result.ground_truth, dashed: true },
  ], xmax, i);
  document.querySelectorAll("#strip img").forEach((img, k) => img.classList.toggle("cur", k === i));
  document.querySelectorAll("#values tr[data-frame]").forEach((tr, k) => tr.classList.toggle("cur", k === i));
}

init().catch((e) => setStatus("error", "error: " + e.message));
