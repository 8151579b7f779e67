// Drives the web UI in headless Chromium over the DevTools protocol (node >= 20 with
// --experimental-websocket). Prints one JSON line with what the page shows.
//   reward URL VIDEO TASK MODE SCREENSHOT.png : upload VIDEO through the file input, score, read
//                                               the values table
//   pair URL SEED SCREENSHOT.png              : the dataset page's training pair for SEED
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const [what, url, ...rest] = process.argv.slice(2);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "robometer-chromium-"));
const chrome = spawn(process.env.CHROMIUM || "chromium",
  ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
   // The machine is offline: no background connections to be refused.
   "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync",
   `--user-data-dir=${profile}`, "about:blank"],
  { stdio: ["ignore", "ignore", "ignore"], detached: true });  // own process group: killed whole
const chromeExited = new Promise((res) => chrome.once("exit", res));
let ws;
// Chromium's helper processes (its process group) write into the profile until they die: kill
// the group, wait for the browser's exit, then remove the profile with retries; a leftover temporary profile
// is reported, never the test's result.
const finish = async (code) => {
  try { ws && ws.close(); } catch {}
  try { process.kill(-chrome.pid, "SIGKILL"); } catch { chrome.kill("SIGKILL"); }
  await Promise.race([chromeExited, sleep(5000)]);
  try {
    fs.rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  } catch (e) {
    console.error(`driver: could not remove ${profile}: ${e.message}`);
  }
  process.exit(code);
};
setTimeout(() => { console.error("driver: timed out"); finish(3); }, 240000);

try {
  let port;
  for (let i = 0; i < 600 && !port; i++) {
    try { port = fs.readFileSync(path.join(profile, "DevToolsActivePort"), "utf8").split("\n")[0]; } catch { await sleep(100); }
  }
  if (!port) throw new Error("chromium did not open its DevTools port");
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  ws = new WebSocket(targets.find((t) => t.type === "page").webSocketDebuggerUrl);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error("websocket error")); });
  let next = 0;
  const pending = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
  };
  const send = (method, params = {}) => new Promise((res, rej) => {
    const id = ++next;
    pending.set(id, (m) => (m.error ? rej(new Error(`${method}: ${m.error.message}`)) : res(m.result)));
    ws.send(JSON.stringify({ id, method, params }));
  });
  const evaluate = async (expression) => {
    const r = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.text} ${JSON.stringify(r.exceptionDetails.exception?.description)}`);
    return r.result.value;
  };
  const waitFor = async (expression, ms) => {
    for (let t = 0; t < ms; t += 100) {
      const v = await evaluate(expression).catch(() => null);
      if (v) return v;
      await sleep(100);
    }
    throw new Error("timed out waiting for " + expression);
  };
  await send("Page.enable");
  await send("Emulation.setDeviceMetricsOverride", { width: 1200, height: 1000, deviceScaleFactor: 1, mobile: false });
  await send("Page.navigate", { url });
  await waitFor("document.readyState === 'complete' && !!document.getElementById('status')", 30000);
  let out;
  if (what === "reward") {
    const [video, task, mode, shot] = rest;
    await waitFor("document.getElementById('model').textContent.length > 0", 30000);  // /ui/api/info answered
    const doc = await send("DOM.getDocument");
    const input = await send("DOM.querySelector", { nodeId: doc.root.nodeId, selector: "#video-file" });
    await send("DOM.setFileInputFiles", { nodeId: input.nodeId, files: [video] });
    await evaluate(`document.getElementById('task').value = ${JSON.stringify(task)};
                    document.getElementById('mode').value = ${JSON.stringify(mode)};
                    document.getElementById('score-btn').click(); true`);
    const state = await waitFor("['done','error'].includes(document.getElementById('status').dataset.state) && " +
                                "document.getElementById('status').dataset.state", 180000);
    out = {
      state, status: await evaluate("document.getElementById('status').textContent"),
      values: await evaluate(`[...document.querySelectorAll('#values tr[data-frame]')].map((tr) => ({
        frame: Number(tr.dataset.frame), progress: Number(tr.querySelector('.progress').textContent),
        success: Number(tr.querySelector('.success').textContent) }))`),
      thumbs: await evaluate("document.querySelectorAll('#strip img').length"),
      curve_points: await evaluate("document.querySelectorAll('#chart circle').length"),
      frame_info: await evaluate("document.getElementById('frame-info').textContent"),
    };
    const png = await send("Page.captureScreenshot", { format: "png" });
    fs.writeFileSync(shot, Buffer.from(png.data, "base64"));
  } else if (what === "pair") {
    const [seed, shot] = rest;
    await waitFor("document.querySelectorAll('#sources tr').length > 1", 30000);
    await evaluate(`document.getElementById('seed').value = ${JSON.stringify(seed)};
                    document.getElementById('pair-btn').click(); true`);
    const state = await waitFor("['done','error'].includes(document.getElementById('status').dataset.state) && " +
                                "document.getElementById('status').dataset.state", 60000);
    out = {
      state, text: await evaluate("document.getElementById('pair').innerText"),
      clip_images: await evaluate("[...document.querySelectorAll('#pair .clip')].map((c) => c.querySelectorAll('img').length)"),
      sources: await evaluate("document.getElementById('sources').innerText"),
    };
    const png = await send("Page.captureScreenshot", { format: "png" });
    fs.writeFileSync(shot, Buffer.from(png.data, "base64"));
  } else {
    throw new Error("usage: reward URL VIDEO TASK MODE SHOT | pair URL SEED SHOT");
  }
  console.log(JSON.stringify(out));
  await finish(0);
} catch (e) {
  console.error("driver: " + e.message);
  await finish(2);
}
