// mnistlab serve page: draw on the pad → POST the canvas as PNG to /api/predict → show the answer. No dependencies.
"use strict";

const $ = (sel) => document.querySelector(sel);
const pad = $("#pad");
const ctx = pad.getContext("2d");
let classes = [...Array(10).keys()].map(String);
let seq = 0;          // id of the latest request sent
let shown = 0;        // id of the latest answer shown (older answers that arrive late are dropped)
let inFlight = false; // at most one live-preview request at a time while drawing
let pending = 0;      // requests under way (body[data-pending], for tests and the status line)

function status(text, isError = false) {
  const s = $("#status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

// ----------------------------------------------------------------------------------------------- drawing pad
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
}

let drawing = false;
let last = null;
let hasInk = false;

pad.addEventListener("pointerdown", (ev) => {
  drawing = true;
  last = padPoint(ev);
  pad.setPointerCapture(ev.pointerId);
  stroke(last, last);
});
pad.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  const p = padPoint(ev);
  stroke(last, p);
  last = p;
  if (!inFlight) predictPad();  // live preview, throttled by the round trip
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    predictPad();
  });
}

function stroke(a, b) {
  // a round white pen ~1/14 of the pad: after the 20/280 rescale it is ~2 px wide, like MNIST strokes
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = pad.width / 14;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(a[0], a[1]);
  ctx.lineTo(b[0], b[1]);
  ctx.stroke();
  hasInk = true;
}

$("#clear").addEventListener("click", () => {
  clearPad();
  hasInk = false;
  resetResult();
});

$("#upload").addEventListener("change", (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  post(file, file.type || "application/octet-stream");
  ev.target.value = "";
});

function predictPad() {
  if (!hasInk) return;
  inFlight = true;
  document.body.dataset.pending = ++pending;  // counted from now: the PNG is made asynchronously
  pad.toBlob((blob) => {
    document.body.dataset.pending = --pending;  // post() counts it again in the same task: never seen as idle
    post(blob, "image/png");
  }, "image/png");
}

// ----------------------------------------------------------------------------------------------- prediction

async function post(body, type) {
  const id = ++seq;
  inFlight = true;
  document.body.dataset.pending = ++pending;
  try {
    const res = await fetch("/api/predict", {method: "POST", headers: {"Content-Type": type}, body});
    const data = await res.json();
    if (id < shown) return;
    shown = id;
    if (!res.ok) { status(`error ${res.status}: ${data.detail}`, true); return; }
    render(data);
    status("");
  } catch (err) {
    status(`request failed: ${err}`, true);
  } finally {
    inFlight = false;
    document.body.dataset.pending = --pending;
  }
}

function pct(p) { return (100 * p).toFixed(1) + " %"; }

function render(r) {
  $("#pred").textContent = r.label;
  $("#pred").dataset.class = r.pred;
  $("#confidence").textContent = pct(r.probs[r.pred]);
  if (r.p_digit !== null && r.p_digit !== undefined) {
    $("#digit-box").hidden = false;
    $("#p-digit").textContent = pct(r.p_digit);
  }
  renderBars($("#bars"), r.probs, r.pred);
  renderRules(r);
  renderSeen(r.input);
  const others = r.classifiers.slice(1);
  $("#others").innerHTML = others.length ? "<h3>Other networks</h3>" : "";
  for (const o of others) {
    const div = document.createElement("div");
    div.className = "other";
    div.innerHTML = `<strong></strong> → class <b></b> (${pct(o.probs[o.pred])})`;
    div.querySelector("strong").textContent = o.run;
    div.querySelector("b").textContent = o.label;
    const bars = document.createElement("div");
    bars.className = "bars";
    renderBars(bars, o.probs, o.pred);
    div.appendChild(bars);
    $("#others").appendChild(div);
  }
}

function renderBars(box, probs, pred) {
  box.innerHTML = "";
  probs.forEach((p, k) => {
    const row = document.createElement("div");
    row.className = "bar" + (k === pred ? " win" : "");
    row.dataset.class = k;
    row.dataset.prob = p.toFixed(6);
    row.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span>' +
                    '<span class="value"></span>';
    row.querySelector(".label").textContent = classes[k] ?? String(k);
    row.querySelector(".fill").style.width = (100 * p).toFixed(2) + "%";
    row.querySelector(".value").textContent = pct(p);
    box.appendChild(row);
  });
}

const RULE_NAMES = {chow: "max probability p1 (Chow)", margin: "ambiguity: margin p1 − p2",
                    distance: "distance to nearest class (Mahalanobis)"};

function renderRules(r) {
  const body = $("#rules tbody");
  body.innerHTML = "";
  for (const [name, d] of Object.entries(r.reject)) {
    const tr = document.createElement("tr");
    tr.dataset.rule = name;
    const decision = d.reject === null || d.reject === undefined ? "–" : (d.reject ? "reject" : "accept");
    const when = d.threshold === null || d.threshold === undefined ? "–"
      : (d.reject_below ? "< " : "> ") + fmt(d.threshold);
    for (const text of [RULE_NAMES[name] ?? name, fmt(d.score), when, decision]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.lastChild.className = decision;
    body.appendChild(tr);
  }
  $("#rules-note").textContent = r.reason ? "Rejected — " + r.reason : r.rejected === null
    ? "This run has no calibrated rejector: only the max-probability score is shown."
    : (r.rejected ? "Rejected by at least one rule." : "Accepted by every rule.");
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  return Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(2) : v.toFixed(3);
}

function drawGray(canvas, pixels) {
  // pixels: 28×28 ints 0..255 → drawn at the canvas size (nearest neighbour)
  const small = document.createElement("canvas");
  small.width = small.height = 28;
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(28, 28);
  for (let i = 0; i < 28; i++) {
    for (let j = 0; j < 28; j++) {
      const o = 4 * (i * 28 + j);
      img.data[o] = img.data[o + 1] = img.data[o + 2] = pixels[i][j];
      img.data[o + 3] = 255;
    }
  }
  sctx.putImageData(img, 0, 0);
  const c = canvas.getContext("2d");
  c.imageSmoothingEnabled = false;
  c.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function renderSeen(pixels) { drawGray($("#seen"), pixels); }

function resetResult() {
  seq++;
  shown = seq;
  $("#pred").textContent = "–";
  delete $("#pred").dataset.class;
  $("#confidence").textContent = "–";
  $("#p-digit").textContent = "–";
  renderBars($("#bars"), classes.map(() => 0), -1);
  $("#rules tbody").innerHTML = "";
  $("#rules-note").textContent = "";
  $("#others").innerHTML = "";
  $("#seen").getContext("2d").clearRect(0, 0, 112, 112);
  status("");
}

// ----------------------------------------------------------------------------------------------- GAN panel
let gan = null;

async function ganSample() {
  const n = Math.max(1, Math.min(64, parseInt($("#gan-n").value, 10) || 1));
  const q = new URLSearchParams({n, format: "json"});
  const digit = $("#gan-digit").value;
  if (digit !== "") q.set("digit", digit);
  const res = await fetch("/api/gan/sample?" + q);
  const data = await res.json();
  if (!res.ok) { status(`GAN error ${res.status}: ${data.detail}`, true); return; }
  const grid = $("#gan-grid");
  grid.innerHTML = "";
  for (const im of data.images) {
    const c = document.createElement("canvas");
    c.width = c.height = 28;
    drawGray(c, im);
    grid.appendChild(c);
  }
}

// ----------------------------------------------------------------------------------------------- start
async function start() {
  clearPad();
  try {
    const m = await (await fetch("/api/models")).json();
    const first = m.classifiers[0];
    classes = first.classes;
    const acc = first.metrics && typeof first.metrics.test_accuracy === "number"
      ? `, test accuracy ${pct(first.metrics.test_accuracy)}` : "";
    $("#models").textContent = `classifier: ${first.name} (${first.model}, ${first.dataset}${acc})` +
      (m.classifiers.length > 1 ? ` + ${m.classifiers.length - 1} more` : "") +
      (m.detector ? ` · detector: ${m.detector.dir}` : "") + (m.gan ? ` · GAN: ${m.gan.dir}` : "");
    gan = m.gan;
    if (gan) {
      $("#gan-off").hidden = true;
      $("#gan-on").hidden = false;
      const sel = $("#gan-digit");
      sel.innerHTML = `<option value="">${gan.conditional ? "all, in turn" : "any"}</option>`;
      if (gan.conditional) {
        classes.forEach((name, k) => { sel.add(new Option(name, String(k))); });
      }
      $("#gan-go").addEventListener("click", ganSample);
    }
  } catch (err) {
    status(`cannot reach the server: ${err}`, true);
  }
  resetResult();
  document.body.dataset.pending = pending;
  document.body.dataset.ready = "1";
}

start();
