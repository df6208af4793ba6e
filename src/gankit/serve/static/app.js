// The gankit serve page: the served models (kind, privacy budget, drift), generate a grid,
// walk the latent space, impute a CSV, synthesize rows. Plain JS, no dependencies; the API key
// stays in this tab's sessionStorage.
"use strict";

const $ = (id) => document.getElementById(id);
let models = {};

function status(text) { $("status").textContent = text || ""; }

function headers() {
  return { "Content-Type": "application/json", "X-API-Key": $("key").value.trim() };
}

async function api(path, body) {
  const init = body === undefined ? { headers: headers() } : { method: "POST", headers: headers(), body: JSON.stringify(body) };
  const response = await fetch(path, init);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.stringify((await response.json()).detail); } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

let loading = 0;

async function loadModels() {
  const key = $("key").value.trim();
  if (!key) return;
  const ticket = ++loading;  // a newer load (the key changed again) wins
  sessionStorage.setItem("gankit-key", key);
  const list = (await (await api("/v1/models")).json()).models;
  if (ticket !== loading) return;
  const previous = $("model").value;
  models = Object.fromEntries(list.map((m) => [m.name, m]));
  const select = $("model");
  select.innerHTML = "";
  for (const m of list) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.kind})`;
    select.appendChild(option);
  }
  if (models[previous]) select.value = previous;
  renderTable(list);
  onModelChange();
  status(`${list.length} model(s)`);
  await refreshDrift();
}

// The privacy budget a model was trained under: model.json's "dp" (epsilon spent, delta).
function budget(m) {
  const dp = (m.spec || {}).dp;
  if (!dp || dp.epsilon === undefined || dp.epsilon === null) return "none (not private)";
  return `ε = ${Number(dp.epsilon).toFixed(2)}` + (dp.delta ? `, δ = ${dp.delta}` : "");
}

function renderTable(list) {
  const body = $("models-body");
  body.innerHTML = "";
  for (const m of list) {
    const row = document.createElement("tr");
    row.dataset.model = m.name;
    for (const text of [m.name, m.kind, m.runtime, budget(m), (m.tags || []).includes("tabular") ? "…" : "not monitored"]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    row.lastChild.className = "drift-none";
    row.addEventListener("click", () => { $("model").value = m.name; onModelChange(); });
    body.appendChild(row);
  }
}

// Drift status of every table model, from GET /v1/models/{name}/quality.
async function refreshDrift() {
  for (const m of Object.values(models)) {
    if (!(m.tags || []).includes("tabular")) continue;
    const q = await (await api(`/v1/models/${encodeURIComponent(m.name)}/quality`)).json();
    const cell = document.querySelector(`tr[data-model="${CSS.escape(m.name)}"] td:last-child`);
    if (!cell) continue;
    const flagged = q.columns.filter((c) => c.drift).map((c) => c.name);
    cell.textContent = q.status === "drift" ? `drift: ${flagged.join(", ")}` : q.status === "warming up" ? `warming up (${q.window} values)` : q.status;
    cell.className = { ok: "drift-ok", drift: "drift-drift", "warming up": "drift-warming" }[q.status] || "drift-none";
  }
}

function current() { return models[$("model").value]; }

function onModelChange() {
  const m = current();
  if (!m) return;
  const can = (tag) => (m.tags || []).includes(tag);
  const isGen = can("generator");
  $("generate-section").hidden = !isGen;
  $("walk-section").hidden = !(isGen && can("image"));
  $("impute-section").hidden = !can("imputation");
  $("synth-section").hidden = !can("synthesis");
  for (const row of document.querySelectorAll("#models-body tr")) row.classList.toggle("current", row.dataset.model === m.name);
  if (can("synthesis")) fillConditions(m);
  $("label-box").hidden = !m.num_classes;
  if (m.num_classes) $("label").max = m.num_classes - 1;
  $("code-box").hidden = !codeCategories(m);
  if (codeCategories(m)) $("code").max = codeCategories(m) - 1;
  if (can("imputation") && !$("csv").value) {
    const names = m.columns.map((c) => c.name);
    $("csv").value = names.join(",") + "\n" + names.map((_, i) => (i % 2 ? "" : exampleValue(m.columns[i]))).join(",") + "\n";
  }
}

// InfoGAN models: K categories of the categorical code (0 when the model has none)
function codeCategories(m) { return (m.spec && m.spec.codes && m.spec.codes.categorical) || 0; }

function isNumeric(column) { return column.kind !== "categorical"; }

function exampleValue(column) {
  if (isNumeric(column)) return String(((column.min ?? 0) + (column.max ?? 1)) / 2);
  return String(column.categories[0] ?? "");
}

function optionalNumber(id) {
  const v = $(id).value;
  return v === "" ? null : Number(v);
}

async function showPng(response, img) {
  const blob = await response.blob();
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
}

async function generate() {
  const m = current();
  const body = { model: m.name, n: Number($("n").value), seed: optionalNumber("seed"), truncation: optionalNumber("truncation") };
  if (m.num_classes) body.labels = Number($("label").value);
  if (codeCategories(m) && $("code").value !== "") body.codes = { categorical: Number($("code").value) };
  if ((m.tags || []).includes("image")) {
    body.format = "grid";
    $("scatter").hidden = true;
    await showPng(await api("/v1/generate", body), $("grid"));
  } else {
    body.format = "array";
    drawScatter((await (await api("/v1/generate", body)).json()).data);
  }
  status("");
}

function drawScatter(points) {
  const canvas = $("scatter");
  canvas.hidden = false;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const extent = Math.max(1e-6, ...points.map((p) => Math.max(Math.abs(p[0]), Math.abs(p[1]))));
  ctx.fillStyle = "#1f77b4";
  for (const [x, y] of points) {
    ctx.fillRect(canvas.width / 2 + (x / extent) * 150 - 1, canvas.height / 2 - (y / extent) * 150 - 1, 3, 3);
  }
}

// Spherical interpolation: Gaussian latents keep their typical norm along the path.
function slerp(a, b, t) {
  const dot = a.reduce((s, v, i) => s + v * b[i], 0);
  const na = Math.hypot(...a), nb = Math.hypot(...b);
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / (na * nb))));
  if (omega < 1e-6) return a.map((v, i) => (1 - t) * v + t * b[i]);
  const s = Math.sin(omega);
  return a.map((v, i) => (Math.sin((1 - t) * omega) / s) * v + (Math.sin(t * omega) / s) * b[i]);
}

let ends = null;

async function latentOf(seed) {
  const body = { model: current().name, n: 1, seed: seed };
  return (await (await api("/v1/latent", body)).json()).z[0];
}

// A class-conditional model walks within the picked class (one label for every frame).
function decodeBody(z) {
  const m = current();
  const body = { model: m.name, z: z, format: "grid" };
  if (m.num_classes) body.labels = z.map(() => Number($("label").value));
  return body;
}

async function walk() {
  ends = [await latentOf(Number($("seed-a").value)), await latentOf(Number($("seed-b").value))];
  const steps = Number($("steps").value);
  const z = Array.from({ length: steps }, (_, i) => slerp(ends[0], ends[1], i / (steps - 1)));
  await showPng(await api("/v1/decode", decodeBody(z)), $("walk-grid"));
  await moveTo();
}

async function moveTo() {
  if (!ends) return;
  const z = [slerp(ends[0], ends[1], Number($("t").value))];
  await showPng(await api("/v1/decode", decodeBody(z)), $("walk-one"));
}

function parseCsv(text, columns) {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const names = lines[0].split(",").map((s) => s.trim());
  const numeric = Object.fromEntries(columns.map((c) => [c.name, isNumeric(c)]));
  return lines.slice(1).map((line) => {
    const cells = line.split(",");
    const row = {};
    names.forEach((name, i) => {
      const cell = (cells[i] ?? "").trim();
      row[name] = cell === "" ? null : numeric[name] ? Number(cell) : cell;
    });
    return row;
  });
}

async function impute() {
  const m = current();
  const rows = parseCsv($("csv").value, m.columns);
  const out = (await (await api("/v1/impute", { model: m.name, rows: rows })).json()).rows;
  const names = out.length ? Object.keys(out[0]) : m.columns.map((c) => c.name);
  $("imputed").textContent = [names.join(","), ...out.map((r) => names.map((n) => r[n]).join(","))].join("\n");
  status("");
  await refreshDrift();
}

function fillConditions(m) {
  const column = $("cond-column");
  const keep = column.value;
  column.innerHTML = '<option value="">(none)</option>';
  for (const c of m.columns.filter((c) => c.kind === "categorical")) {
    const option = document.createElement("option");
    option.value = option.textContent = c.name;
    column.appendChild(option);
  }
  column.value = m.columns.some((c) => c.name === keep) ? keep : "";
  fillValues();
}

function fillValues() {
  const m = current();
  const select = $("cond-value");
  select.innerHTML = "";
  const c = m && m.columns ? m.columns.find((c) => c.name === $("cond-column").value) : null;
  select.disabled = !c;
  for (const v of c ? c.categories : []) {
    const option = document.createElement("option");
    option.value = option.textContent = String(v);
    select.appendChild(option);
  }
}

async function synthesize() {
  const m = current();
  const body = { model: m.name, n: Number($("synth-n").value), seed: optionalNumber("synth-seed") };
  const column = $("cond-column").value;
  if (column) {
    const c = m.columns.find((c) => c.name === column);
    const value = c.categories.find((v) => String(v) === $("cond-value").value);
    body.conditions = { [column]: value };
  }
  const rows = (await (await api("/v1/synthesize", body)).json()).rows;
  const names = rows.length ? Object.keys(rows[0]) : m.columns.map((c) => c.name);
  $("synthesized").textContent = [names.join(","), ...rows.map((r) => names.map((n) => r[n]).join(","))].join("\n");
  status("");
  await refreshDrift();
}

function debounced(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function guarded(fn) {
  return () => fn().catch((e) => status(e.message));
}

$("key").value = sessionStorage.getItem("gankit-key") || "";
$("refresh").addEventListener("click", guarded(loadModels));
$("model").addEventListener("change", onModelChange);
$("generate").addEventListener("click", guarded(generate));
$("walk").addEventListener("click", guarded(walk));
$("t").addEventListener("input", guarded(moveTo));
$("impute").addEventListener("click", guarded(impute));
$("synthesize").addEventListener("click", guarded(synthesize));
$("cond-column").addEventListener("change", fillValues);
$("key").addEventListener("input", debounced(guarded(loadModels), 250));  // no button needed
if ($("key").value) guarded(loadModels)();
