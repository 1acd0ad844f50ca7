"""``fleqc run PROG --report run.html``: one self-contained HTML page of a run.

The page needs no network and no other file: the data (source lines, the trace, memory by label
after every step) is a JSON object inside the page, every picture a PNG data URI, the script and
styles inline. It shows

- the source, with the line of the instruction executed at the chosen step highlighted (and the
  next instruction's line outlined);
- a slider over the steps (0 = the initial state) and the step's trace line;
- memory by label after the chosen step, the cells written by that step marked;
- X after the chosen step as a heatmap, with the row blocks and column regions named (transformer);
- the attention maps of every head of the chosen layer during the next pass, the one that
  executes the instruction at pc (transformer), recomputed from the layer weights
  (:mod:`fleqc.observe.attention`).

A run can be long: memory and X are recorded for the first ``MAX_STEPS`` steps and attention for
as many steps as fit ``MAX_HEAD_IMAGES`` head pictures (both fewer on big machines, so that a page
holds at most ``MAX_PIXELS`` pixels of each kind); the page says what was left out. The
slider is also driven by the address: ``report.html#step=12`` opens at step 12.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np

from fleqc.runner import Run
from fleqc.observe.attention import all_attention_maps, attention_layers
from fleqc.observe.pictures import attention_png, data_uri, x_png
from fleqc.steps import TraceEvent, file_lines, format_value
from fleqc.program import source_files, values_by_label
from fleqc.safe_io import atomic_output

MAX_STEPS = 500
MAX_HEAD_IMAGES = 1500
MAX_EXACT_ENTRIES = 20_000  # of X per step, given exactly for the value readout (the rest are codes)
MAX_PIXELS = 60_000_000  # of X pictures, and separately of attention pictures, in one page


class Recorder:
    """Collects a run's states for the report: ``event`` and ``state`` are the Run's
    ``on_event`` and ``on_X`` callbacks; ``finish`` then ``write``."""

    def __init__(self, machine: Run, max_steps: int = MAX_STEPS, max_head_images: int = MAX_HEAD_IMAGES) -> None:
        self.machine = machine
        self.max_steps = max_steps
        self.max_head_images = max_head_images
        if machine.card is not None and machine.backend != "reference":  # big machines: fewer pictures
            d, n = machine.card.X.shape
            self.max_steps = max(1, min(max_steps, MAX_PIXELS // (d * n)))
            self.max_head_images = min(max_head_images, MAX_PIXELS // (n * n))
        self.images: list[str] = []
        self.steps: list[dict] = []
        self.events: dict[int, TraceEvent] = {}
        self.head_images = 0
        self.attention_until = -1  # last step whose attention was recorded
        self.total_steps = 0
        self.heads_per_pass = 0
        if machine.model is not None:
            self.heads_per_pass = sum(machine.model.layers[k].heads for k in attention_layers(machine.model))
        self._record(0, machine.X)

    def _image(self, png: bytes) -> int:
        self.images.append(data_uri(png))
        return len(self.images) - 1

    def _record(self, step: int, X: Optional[np.ndarray]) -> None:
        memory = values_by_label(self.machine.symbols, self.machine.memory())
        entry: dict[str, Any] = {
            "step": step,
            "pc": self.machine.pc,
            "memory": {k: format_value(v) for k, v in memory.items()},
            "x": None,
            "attention": [],
        }
        callers = self.machine.callers
        if callers is not None:  # a Flow program inside a stdlib routine: the line that called it
            caller, inside = callers.locate(entry["pc"], self.machine.cell)
            if inside:
                entry["caller"] = caller
        if X is not None:
            entry["x"] = self._image(x_png(X))
            # the readout's exact values: every entry that is not a -1/0/+1 code (few: the FLEQ cells)
            odd = np.argwhere(~np.isin(X, (-1.0, 0.0, 1.0)))[:MAX_EXACT_ENTRIES]
            entry["xv"] = [[int(r), int(c), float(X[r, c])] for r, c in odd]
            if self.head_images + self.heads_per_pass <= self.max_head_images:
                for head in all_attention_maps(self.machine.model, X, self.machine.mode):
                    entry["attention"].append([head.layer, head.head, head.name, self._image(attention_png(head.weights))])
                self.head_images += self.heads_per_pass
                self.attention_until = step
        self.steps.append(entry)

    def event(self, event: TraceEvent) -> None:
        self.total_steps = event.step
        if event.step <= self.max_steps:
            self.events[event.step] = event
            if self.machine.backend == "reference":
                self._record(event.step, None)

    def state(self, step: int, X: np.ndarray) -> None:
        self.total_steps = step
        if step <= self.max_steps:
            self._record(step, X)

    def finish(self) -> None:
        self.total_steps = self.machine.steps

    # -- the page --------------------------------------------------------------------------

    def data(self) -> dict:
        machine = self.machine
        files: dict[str, list[str]] = {machine.source_name: list(file_lines(machine.source_name))}
        instructions = getattr(machine.program, "instructions", ())  # a classic program is words only
        for instruction in instructions:
            file = (instruction.span.file if instruction.span else "") or machine.source_name
            if file not in files:
                files[file] = list(file_lines(file))
        steps = []
        for entry in self.steps:
            event = self.events.get(entry["step"])
            item = dict(entry)
            if event is not None:
                item.update(file=event.file, line=event.line, text=event.text().strip(),
                            written=[a.label for a in event.writes],
                            read=[a.label for a in event.reads])
            steps.append(item)
        for entry in steps:  # where the next instruction comes from (in a routine a Flow line called: that line)
            pc = entry.pop("caller", entry["pc"])
            if 0 <= pc < len(instructions):
                span = instructions[pc].span
                entry["next_file"] = (span.file if span else "") or machine.source_name
                entry["next_line"] = span.line if span else 0
        card = machine.card
        layout = None
        if card is not None and machine.backend != "reference":
            d, n = card.X.shape
            regions = [(card.machine.scratch_name, *card.regions.scratch),
                       ("memory", *card.regions.memory), ("instructions", *card.regions.instructions),
                       ("padding", card.regions.instructions[1], n)]
            layout = {
                "d": d, "n": n,
                "blocks": [[b.name, b.start, b.size] for b in card.rows],
                "regions": [[name, lo, hi] for name, lo, hi in regions if hi > lo],
            }
        return {
            "title": Path(machine.source_name).name,
            "backend": machine.backend + (f", {machine.mode}" if machine.backend == "transformer" else ""),
            "machine": card.config.describe() if card is not None else machine.program.machine,
            "total_steps": self.total_steps,
            "halted": machine.halted,
            "recorded_steps": len(steps) - 1,
            "attention_until": self.attention_until,
            "files": files,
            "steps": steps,
            "layout": layout,
            "images": self.images,
        }

    def html(self) -> str:
        # "<" occurs in JSON only inside strings: as \u003c no text of the program (a comment holding
        # "</script>", "<!--" or "<script") can end or change the script element the data sits in
        data = json.dumps(self.data()).replace("<", "\\u003c")
        fields = {"__TITLE__": html.escape(Path(self.machine.source_name).name), "__DATA__": data}
        return re.sub("__TITLE__|__DATA__", lambda m: fields[m.group(0)], PAGE)  # one pass: no field in another

    def write(self, path, inputs=()) -> Path:
        """Write the page under fleqc's output policy (fleqc.safe_io): never over one of ``inputs``
        nor over a file the program was made from."""
        path = Path(path)
        page = self.html()
        with atomic_output(path, (*inputs, *source_files(self.machine.program)), text=True) as f:
            f.write(page)
        return path


def write_report(target, path, backend: str = "transformer", max_steps: int = 100_000, **options) -> Recorder:
    """Run ``target`` and write its report to ``path`` (the API behind ``--report``)."""
    machine = Run(target, backend, **options)
    recorder = Recorder(machine)
    machine.advance(max_steps, on_event=recorder.event, on_X=recorder.state)
    recorder.finish()
    recorder.write(path)
    return recorder


PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fleqc run: __TITLE__</title>
<style>
body { font: 14px/1.35 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 8px 16px; background: #263238; color: #eee; }
header h1 { font-size: 18px; margin: 0 0 2px 0; }
#controls { padding: 8px 16px; background: #eceff1; position: sticky; top: 0; z-index: 2; }
#slider { width: 60%; vertical-align: middle; }
#stepinfo { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre; overflow-x: auto; }
main { display: grid; grid-template-columns: minmax(380px, 1fr) minmax(260px, 0.6fr); gap: 12px; padding: 12px 16px; }
section { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 8px; overflow: auto; }
h2 { font-size: 15px; margin: 0 0 6px 0; }
#source { font-family: ui-monospace, monospace; font-size: 12px; max-height: 420px; overflow: auto; }
#source div { white-space: pre; padding: 0 4px; }
#source div.executed { background: #ffe082; }
#source div.next { outline: 1px solid #42a5f5; }
#source span.no { color: #999; display: inline-block; width: 3.5em; text-align: right; margin-right: 8px; }
table { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 12px; }
td, th { border-bottom: 1px solid #eee; padding: 2px 8px; text-align: left; vertical-align: top; }
tr.written td { background: #ffe082; }
tr.read td.label { text-decoration: underline; }
#xwrap { position: relative; display: flex; }
#xnames { position: relative; width: 110px; font-size: 10px; font-family: ui-monospace, monospace; }
#xnames div { position: absolute; right: 4px; white-space: nowrap; transform: translateY(-50%); }
#xbox { position: relative; flex: 1; }
#ximg { width: 100%; height: 520px; image-rendering: pixelated; border: 1px solid #999; display: block; }
#xbox, #xnames { flex-shrink: 0; }
#xregions { position: relative; height: 28px; font-size: 10px; }
#xregions div { position: absolute; border-left: 1px solid #333; padding-left: 2px; white-space: nowrap; }
#heads { display: flex; flex-wrap: wrap; gap: 8px; }
#heads figure { margin: 0; font-size: 11px; text-align: center; }
#heads img { width: 180px; height: 180px; image-rendering: pixelated; border: 1px solid #999; display: block; }
.thumb { position: relative; width: 182px; height: 182px; margin-left: 34px; }
.thumb .line { position: absolute; background: rgba(255,255,255,0.7); pointer-events: none; }
.axis { position: relative; font-size: 9px; color: #555; height: 22px; margin-left: 34px; width: 182px; }
.axis span, .yaxis span { position: absolute; white-space: nowrap; }
.yaxis { position: absolute; left: -34px; top: 0; width: 32px; height: 182px; font-size: 9px; color: #555; }
.yaxis span { right: 0; transform: translateY(-50%); }
.readout { font-family: ui-monospace, monospace; font-size: 12px; min-height: 1.4em; }
.wide { grid-column: 1 / -1; }
.note { color: #666; font-size: 12px; }
</style>
</head>
<body>
<header><h1 id="title"></h1><div id="subtitle"></div></header>
<div id="controls">
  <label for="slider">step <b id="stepno">0</b> / <span id="stepmax"></span></label>
  <input type="range" id="slider" min="0" value="0">
  <button id="prev" type="button">&#8592;</button> <button id="next" type="button">&#8594;</button>
  <div id="stepinfo"></div>
</div>
<main>
  <section><h2>Source <span id="srcfile" class="note"></span></h2><div id="source"></div></section>
  <section><h2>Memory after this step</h2><table id="memory"><thead><tr><th>label</th><th>value</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>X after this step</h2><div id="xnote" class="note"></div>
    <div id="xread" class="readout">point at X to read an entry</div>
    <div id="xwrap"><div id="xnames"></div><div id="xbox"><img id="ximg" alt="X as a heatmap"><div id="xregions"></div></div></div></section>
  <section class="wide"><h2>Attention during the next pass: layer <select id="layer"></select></h2>
    <div id="attnote" class="note"></div><div id="attread" class="readout">point at a head to read a weight</div>
    <div id="heads"></div></section>
</main>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const slider = document.getElementById("slider");
const layerSelect = document.getElementById("layer");
const $ = (id) => document.getElementById(id);
$("title").textContent = "fleqc run: " + D.title;
$("subtitle").textContent = D.machine + " | " + D.backend + " | " + D.total_steps + " steps" +
  (D.halted ? ", halted" : ", not halted") +
  (D.recorded_steps < D.total_steps ? " | the first " + D.recorded_steps + " steps are recorded" : "");
slider.max = String(D.steps.length - 1);
$("stepmax").textContent = String(D.steps.length - 1);

let shownFile = null;
function showFile(file) {
  if (file === shownFile) return;
  shownFile = file;
  const box = $("source");
  box.innerHTML = "";
  (D.files[file] || []).forEach((text, i) => {
    const row = document.createElement("div");
    row.id = "line-" + (i + 1);
    const no = document.createElement("span");
    no.className = "no";
    no.textContent = String(i + 1);
    row.appendChild(no);
    row.appendChild(document.createTextNode(text));
    box.appendChild(row);
  });
  $("srcfile").textContent = file;
}

if (D.layout) {
  const names = $("xnames");
  D.layout.blocks.forEach(([name, start, size]) => {
    const label = document.createElement("div");
    label.style.top = (100 * (start + size / 2) / D.layout.d) + "%";
    label.textContent = name;
    label.title = name + ": rows " + start + "-" + (start + size - 1);
    names.appendChild(label);
  });
  const tall = Math.max(520, D.layout.d);  // at least one pixel per row
  names.style.height = tall + "px";
  $("ximg").style.height = tall + "px";
  const gap = 12 * D.layout.d / tall;  // rows per line of label text
  let last = -Infinity;
  [...names.children].forEach((label, i) => {  // leave out names that would overlap the one above
    const [, start, size] = D.layout.blocks[i];
    const centre = start + size / 2;
    if (centre - last < gap) { label.style.display = "none"; } else { last = centre; }
  });
  const regions = $("xregions");
  D.layout.regions.forEach(([name, lo, hi], i) => {
    const label = document.createElement("div");
    label.style.left = (100 * lo / D.layout.n) + "%";
    label.style.top = (i % 2 ? 14 : 0) + "px";
    label.textContent = name + " " + lo + "-" + (hi - 1);
    regions.appendChild(label);
  });
  const layers = [...new Set(D.steps.flatMap((s) => s.attention.map((a) => a[0])))];
  layers.forEach((l) => { const o = document.createElement("option"); o.value = String(l); o.textContent = String(l); layerSelect.appendChild(o); });
} else {
  $("xnote").textContent = "This run used the reference interpreter: run on the transformer backend to see X and attention.";
}

function rowName(row) {  // "mem[3]": the row block and the row within it
  const block = D.layout.blocks.find(([, start, size]) => start <= row && row < start + size);
  if (!block) return "row " + row;
  return block[2] > 1 ? block[0] + "[" + (row - block[1]) + "]" : block[0];
}
function columnName(col) {
  const region = D.layout.regions.find(([, lo, hi]) => lo <= col && col < hi);
  return region ? region[0] + (region[0] === "memory" ? " cell " + (col - region[1]) : region[0] === "instructions" ? " " + (col - region[1]) : "") : "";
}
function pixel(img, x, y) {  // the RGB of one pixel of a picture (data URIs do not taint a canvas)
  if (!img.naturalWidth) return null;
  if (!img._canvas || img._canvas.src !== img.src) {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    canvas.getContext("2d").drawImage(img, 0, 0);
    img._canvas = {src: img.src, context: canvas.getContext("2d")};
  }
  return img._canvas.context.getImageData(x, y, 1, 1).data;
}
function at(img, event, rows, cols) {  // the (row, column) of the picture under the pointer
  const box = img.getBoundingClientRect();
  const col = Math.floor((event.clientX - box.left) / box.width * cols);
  const row = Math.floor((event.clientY - box.top) / box.height * rows);
  return (row < 0 || col < 0 || row >= rows || col >= cols) ? null : [row, col];
}
function xValue(s, row, col) {  // exact: the step's non-code entries, else the code the colour shows
  const exact = (s.xv || []).find(([r, c]) => r === row && c === col);
  if (exact) return String(exact[2]);
  const rgb = pixel($("ximg"), col, row);
  if (!rgb) return "?";
  if (rgb[0] > 230 && rgb[2] > 230) return "0";
  return rgb[0] > rgb[2] ? "1" : "-1";
}
$("ximg").addEventListener("mousemove", (event) => {
  if (!D.layout) return;
  const s = D.steps[Number(slider.value)];
  const where = at($("ximg"), event, D.layout.d, D.layout.n);
  if (!where) return;
  const [row, col] = where;
  $("xread").textContent = "row " + row + " (" + rowName(row) + "), column " + col + " (" + columnName(col) + "): " + xValue(s, row, col);
});
function readHead(event) {  // the weight under the pointer: w = c^4, c the colour's position dark..yellow
  const img = event.target;
  const where = at(img, event, img.naturalHeight, img.naturalWidth);
  if (!where) return;
  const [key, query] = where;
  const rgb = pixel(img, query, key);
  const c = Math.min(1, Math.max(0, (rgb[0] - 40) / 213));
  const w = Math.pow(c, 4);
  const text = img.dataset.head + ": query column " + query + " (" + columnName(query) + ") attends key column " + key +
    " (" + columnName(key) + ") with weight " + (w < 0.0005 ? "0" : "≈ " + w.toPrecision(3));
  $("attread").textContent = text;
  img.title = text;
}
function regionMarks(thumb, n) {  // the column regions on both axes of a thumbnail
  const xaxis = document.createElement("div"); xaxis.className = "axis";
  const yaxis = document.createElement("div"); yaxis.className = "yaxis";
  D.layout.regions.forEach(([name, lo, hi], i) => {
    const short = name.slice(0, 5);
    const x = document.createElement("span"); x.style.left = (100 * lo / n) + "%"; x.style.top = (i % 2 ? 10 : 0) + "px";
    x.textContent = short; x.title = name + " " + lo + "-" + (hi - 1);
    const y = document.createElement("span"); y.style.top = (100 * (lo + hi) / 2 / n) + "%"; y.textContent = short; y.title = x.title;
    xaxis.appendChild(x); yaxis.appendChild(y);
    if (lo > 0) {
      const v = document.createElement("div"); v.className = "line"; v.style.left = (100 * lo / n) + "%"; v.style.top = "0"; v.style.width = "1px"; v.style.height = "100%";
      const h = document.createElement("div"); h.className = "line"; h.style.top = (100 * lo / n) + "%"; h.style.left = "0"; h.style.height = "1px"; h.style.width = "100%";
      thumb.appendChild(v); thumb.appendChild(h);
    }
  });
  thumb.appendChild(yaxis);
  return xaxis;
}

function render() {
  const k = Number(slider.value);
  const s = D.steps[k];
  $("stepno").textContent = String(k);
  document.body.dataset.step = String(k);
  if (location.hash !== "#step=" + k) {  // the URL names the step shown, so it can be linked
    try { history.replaceState(null, "", "#step=" + k); } catch (e) { location.hash = "step=" + k; }
  }
  $("stepinfo").textContent = k === 0 ? "initial state, pc " + s.pc : s.text;
  const file = s.file || s.next_file || Object.keys(D.files)[0];
  showFile(file);
  document.querySelectorAll("#source div.executed, #source div.next").forEach((e) => e.classList.remove("executed", "next"));
  if (s.line && s.file === shownFile) {
    const row = $("line-" + s.line);
    if (row) { row.classList.add("executed"); row.scrollIntoView({block: "nearest"}); }
  }
  if (s.next_line && s.next_file === shownFile) {
    const row = $("line-" + s.next_line);
    if (row) row.classList.add("next");
  }
  const body = document.querySelector("#memory tbody");
  body.innerHTML = "";
  Object.entries(s.memory).forEach(([label, value]) => {
    const tr = document.createElement("tr");
    tr.dataset.label = label;
    if ((s.written || []).includes(label)) tr.classList.add("written");
    if ((s.read || []).includes(label)) tr.classList.add("read");
    const a = document.createElement("td"); a.className = "label"; a.textContent = label;
    const b = document.createElement("td"); b.className = "value"; b.textContent = value;
    tr.appendChild(a); tr.appendChild(b); body.appendChild(tr);
  });
  if (D.layout) {
    $("ximg").src = s.x === null ? "" : D.images[s.x];
    $("xnote").textContent = "rows: named blocks (left); columns: regions (below). Blue -1, white 0, red +1; darker beyond (log scale). Point at an entry to read it.";
    const layer = Number(layerSelect.value);
    const heads = $("heads");
    heads.innerHTML = "";
    const maps = s.attention.filter((a) => a[0] === layer);
    $("attnote").textContent = maps.length ? "key column down, query column across (regions marked); the pass that executes instruction " +
      s.pc + "; colour dark 0 to yellow 1 as w^0.25, so small even weights show; point at a head to read a weight"
      : "attention was recorded for steps 0-" + D.attention_until + " only";
    maps.forEach(([l, h, name, img]) => {
      const fig = document.createElement("figure");
      const thumb = document.createElement("div"); thumb.className = "thumb";
      const im = document.createElement("img"); im.src = D.images[img]; im.alt = "layer " + l + " head " + h;
      im.dataset.head = "layer " + l + " head " + h;
      im.addEventListener("mousemove", readHead);
      thumb.appendChild(im);
      const xaxis = regionMarks(thumb, D.layout.n);
      const cap = document.createElement("figcaption"); cap.textContent = "head " + h + ": " + name;
      fig.appendChild(thumb); fig.appendChild(xaxis); fig.appendChild(cap); heads.appendChild(fig);
    });
  }
}

function fromHash() {
  const m = /step=(\d+)/.exec(location.hash);
  if (m) {
    slider.value = String(Math.min(Number(m[1]), D.steps.length - 1));
    slider.dispatchEvent(new Event("input"));
  }
}
slider.addEventListener("input", render);
layerSelect.addEventListener("change", render);
$("prev").addEventListener("click", () => { slider.value = String(Number(slider.value) - 1); render(); });
$("next").addEventListener("click", () => { slider.value = String(Number(slider.value) + 1); render(); });
window.addEventListener("hashchange", fromHash);
fromHash();  // a linked step first: render would otherwise write #step=0 over it
render();
</script>
</body>
</html>
"""
