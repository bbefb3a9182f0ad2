// faceprint's web page: plain JavaScript, no build step, nothing from a CDN. Every call goes to this
// server's own API with the key the user signed in with (kept in sessionStorage for this tab only).
// User text (names, file names, messages) is always set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let KEY = sessionStorage.getItem("faceprint-key") || "";

function setStatus(id, text, isError = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function api(method, path, body) {
  const headers = { "x-api-key": KEY };
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = new Error((data && (data.reason || data.message)) || `HTTP ${r.status}`);
    err.status = r.status;
    err.data = data;
    throw err;
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function pct(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(3); }

// ---------------------------------------------------------------- sign in, tabs
async function signIn(key) {
  KEY = key;
  try {
    const ready = await api("GET", "/ready");
    sessionStorage.setItem("faceprint-key", key);
    setStatus("signin-status", `signed in: collection ${ready.collection}, role ${ready.role}, ` +
      `${ready.templates} template(s), model ${ready.model}`);
    $("tabs").hidden = false;
    $("app").hidden = false;
    $("signout").hidden = false;
    $("key").value = "";
  } catch (e) {
    KEY = "";
    sessionStorage.removeItem("faceprint-key");
    setStatus("signin-status", `sign-in failed: ${e.message}`, true);
  }
}

$("signin").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("key").value.trim()); });
$("signout").addEventListener("click", () => {
  KEY = ""; sessionStorage.removeItem("faceprint-key");
  $("tabs").hidden = true; $("app").hidden = true; $("signout").hidden = true;
  setStatus("signin-status", "signed out");
});

function showTab(name) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== `tab-${name}`; });
  if (name === "people") loadPeople();
}
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));

// ---------------------------------------------------------------- recognize
function loadImage(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot show ${file.name} in the browser`));
    img.src = url;
  });
}

function drawFaces(canvas, img, faces) {
  const scale = Math.min(1, 900 / img.naturalWidth);
  canvas.width = Math.round(img.naturalWidth * scale);
  canvas.height = Math.round(img.naturalHeight * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  ctx.lineWidth = 3;
  ctx.font = "bold 16px system-ui, sans-serif";
  for (const f of faces) {
    const [x1, y1, x2, y2] = f.detection.box.map((v) => v * scale);
    const colour = f.decision === "known" ? "#18c04a" : (f.decision === "unknown" ? "#f0a000" : "#e0203a");
    ctx.strokeStyle = colour;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const top = f.matches && f.matches.length ? f.matches[0].similarity : null;
    const label = `${f.name} ${pct(top)}`;
    const w = ctx.measureText(label).width + 8;
    const ty = Math.max(0, y1 - 22);
    ctx.fillStyle = colour;
    ctx.fillRect(x1, ty, w, 22);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 + 4, ty + 16);
  }
}

$("recognize-go").addEventListener("click", async () => {
  const file = $("recognize-file").files[0];
  const list = $("recognize-results");
  list.replaceChildren();
  if (!file) { setStatus("recognize-status", "choose a photo first", true); return; }
  setStatus("recognize-status", "recognizing…");
  try {
    const img = await loadImage(file);
    const form = new FormData();
    form.append("file", file, file.name);
    const answer = await api("POST", "/v1/identify?k=3", form);
    drawFaces($("recognize-canvas"), img, answer.faces);
    for (const f of answer.faces) {
      const li = el("li");
      li.append(el("span", f.name, f.decision));
      const best = f.matches.map((m) => `${m.name} ${pct(m.similarity)}`).join(", ");
      li.append(el("span", `  (${f.decision}; threshold ${pct(f.threshold)} at FMR ${f.fmr}; candidates: ${best || "none"})`));
      list.append(li);
    }
    setStatus("recognize-status", `${answer.faces.length} face(s), model ${answer.model}`);
  } catch (e) {
    setStatus("recognize-status", e.message, true);
  }
});

// ---------------------------------------------------------------- enroll
$("enroll-go").addEventListener("click", async () => {
  const name = $("enroll-name").value.trim();
  const files = Array.from($("enroll-files").files);
  const table = $("enroll-results");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  table.hidden = true;
  if (!name || !files.length) { setStatus("enroll-status", "give a name and at least one photo", true); return; }
  setStatus("enroll-status", `enrolling ${files.length} photo(s)…`);
  const form = new FormData();
  files.forEach((f) => form.append("files", f, f.name));
  const liveness = $("enroll-liveness").checked ? "passive" : "off";
  let photos = [];
  try {
    const answer = await api("POST", `/v1/enroll?name=${encodeURIComponent(name)}&liveness=${liveness}`, form);
    photos = answer.photos;
    const dups = answer.duplicates.length ? `; ${answer.duplicates.length} already stored photo(s) left out` : "";
    setStatus("enroll-status", `enrolled ${answer.subject}: ${answer.added} photo(s) added, ` +
      `${answer.templates} in all${dups}`);
  } catch (e) {
    photos = (e.data && e.data.photos) || [];
    setStatus("enroll-status", e.message, true);
  }
  for (const p of photos) {
    const tr = el("tr");
    tr.append(el("td", p.source));
    tr.append(el("td", p.usable ? "ok" : "not used", p.usable ? "known" : "bad"));
    tr.append(el("td", pct(p.detection_score)));
    tr.append(el("td", p.liveness ? `${p.liveness.verdict} ${pct(p.liveness.score)}` : "–"));
    tr.append(el("td", p.error || ""));
    body.append(tr);
  }
  table.hidden = photos.length === 0;
});

// ---------------------------------------------------------------- people
async function loadPeople() {
  const body = $("people-table").querySelector("tbody");
  setStatus("people-status", "loading…");
  try {
    const { subjects } = await api("GET", "/api/v1/recognition/subjects");
    const shown = subjects.slice(0, 200);
    const counts = await Promise.all(shown.map((s) =>
      api("GET", `/api/v1/recognition/faces?size=1&subject=${encodeURIComponent(s)}`)
        .then((r) => r.total_elements).catch(() => "?")));
    body.replaceChildren();
    shown.forEach((name, i) => {
      const tr = el("tr");
      tr.dataset.name = name;
      tr.append(el("td", name));
      tr.append(el("td", counts[i]));
      const input = el("input");
      input.type = "text";
      input.className = "rename-to";
      const cell = el("td");
      const rename = el("button", "Rename");
      rename.className = "rename";
      rename.addEventListener("click", () => renamePerson(name, input.value.trim()));
      cell.append(input, rename);
      tr.append(cell);
      const del = el("button", "Delete");
      del.className = "delete";
      del.addEventListener("click", () => deletePerson(name));
      const dcell = el("td");
      dcell.append(del);
      tr.append(dcell);
      body.append(tr);
    });
    const more = subjects.length > shown.length ? ` (first ${shown.length} shown)` : "";
    setStatus("people-status", `${subjects.length} people${more}`);
  } catch (e) {
    setStatus("people-status", e.message, true);
  }
}

async function renamePerson(name, to) {
  if (!to) { setStatus("people-status", "type the new name first", true); return; }
  try {
    await api("PUT", `/api/v1/recognition/subjects/${encodeURIComponent(name)}`, { subject: to });
    await loadPeople();
    setStatus("people-status", `renamed ${name} to ${to}`);
  } catch (e) { setStatus("people-status", e.message, true); }
}

async function deletePerson(name) {
  if (!window.confirm(`Delete ${name} and every stored template of this person? This cannot be undone.`)) return;
  try {
    await api("DELETE", `/api/v1/recognition/subjects/${encodeURIComponent(name)}`);
    await loadPeople();
    setStatus("people-status", `deleted ${name}`);
  } catch (e) { setStatus("people-status", e.message, true); }
}
$("people-refresh").addEventListener("click", loadPeople);

// ---------------------------------------------------------------- verify
$("verify-go").addEventListener("click", async () => {
  const a = $("verify-a").files[0];
  const b = $("verify-b").files[0];
  const out = $("verify-result");
  out.hidden = true;
  if (!a || !b) { setStatus("verify-status", "choose two photos", true); return; }
  setStatus("verify-status", "comparing…");
  try {
    const form = new FormData();
    form.append("source_image", a, a.name);
    form.append("target_image", b, b.name);
    const r = await api("POST", "/v1/verify", form);
    out.className = `verdict ${r.decision}`;
    out.textContent = `${r.decision === "match" ? "Same person" : "Not the same person"} ` +
      `(similarity ${pct(r.similarity)}, threshold ${pct(r.threshold)} at FMR ${r.fmr}, model ${r.model})`;
    out.hidden = false;
    setStatus("verify-status", "");
  } catch (e) { setStatus("verify-status", e.message, true); }
});

// ---------------------------------------------------------------- webcam: active liveness challenge
function record(stream, seconds) {
  return new Promise((resolve, reject) => {
    const types = ["video/webm;codecs=vp8", "video/webm", "video/mp4"];
    const type = types.find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t));
    if (!type) { reject(new Error("this browser cannot record video (MediaRecorder)")); return; }
    const chunks = [];
    const rec = new MediaRecorder(stream, { mimeType: type });
    rec.ondataavailable = (ev) => { if (ev.data && ev.data.size) chunks.push(ev.data); };
    rec.onstop = () => resolve(new Blob(chunks, { type }));
    rec.onerror = (ev) => reject(ev.error || new Error("recording failed"));
    rec.start(250);
    setTimeout(() => rec.stop(), seconds * 1000);
  });
}

$("cam-start").addEventListener("click", async () => {
  const verdict = $("cam-verdict");
  const identity = $("cam-identity");
  verdict.hidden = true; identity.hidden = true;
  $("cam-start").disabled = true;
  $("cam-still").hidden = true; $("cam-video").hidden = false;
  let stream = null;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    $("cam-video").srcObject = stream;
    const c = await api("POST", "/v1/challenge?actions=2");
    $("cam-instructions").textContent = `Within ${c.time_limit_s} s: ${c.instructions}`;
    setStatus("cam-status", "recording…");
    const started = Date.now();
    const tick = setInterval(() => {
      const left = Math.max(0, c.time_limit_s - (Date.now() - started) / 1000);
      setStatus("cam-status", `recording… ${left.toFixed(0)} s left`);
    }, 500);
    const video = $("cam-video");
    const still = $("cam-still");
    still.hidden = true; video.hidden = false;
    const snap = setTimeout(() => {  // a frame of the answer, kept on screen once the camera is off
      still.width = video.videoWidth; still.height = video.videoHeight;
      still.getContext("2d").drawImage(video, 0, 0);
    }, 1000);
    const clip = await record(stream, c.time_limit_s);
    clearInterval(tick);
    clearTimeout(snap);
    if (still.width) { still.hidden = false; video.hidden = true; }
    setStatus("cam-status", `checking ${(clip.size / 1024).toFixed(0)} KB…`);
    const form = new FormData();
    form.append("video", clip, clip.type.includes("mp4") ? "answer.mp4" : "answer.webm");
    const r = await api("POST", `/v1/challenge/${encodeURIComponent(c.id)}`, form);
    verdict.className = `verdict ${r.verdict}`;
    verdict.textContent = `Liveness: ${r.verdict}` + (r.passed ? " (challenge passed)" : ` (${r.reasons.join("; ")})`);
    verdict.hidden = false;
    const face = (r.faces || [])[0];
    identity.className = `verdict ${face ? face.decision : "unknown"}`;
    identity.textContent = face
      ? `Identity: ${face.name} (${face.decision}` +
        (face.matches.length ? `, similarity ${pct(face.matches[0].similarity)}` : "") + `, FMR ${face.fmr})`
      : "Identity: no face to identify";
    identity.hidden = false;
    setStatus("cam-status", `${r.frames} frames checked`);
  } catch (e) {
    setStatus("cam-status", e.message, true);
  } finally {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    $("cam-start").disabled = false;
  }
});

if (KEY) signIn(KEY);
