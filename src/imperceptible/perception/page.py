"""The study page: one self-contained HTML file (images inline, no server, no network), for a desktop
browser or a phone, from a ``file://`` URL or a web server alike.

Screens: instructions (with an optional participant code), the trials (progress bar; keyboard: ``1``/``2`` or
the arrow keys for A/B, ``Y``/``N`` for yes/no; large buttons for touch; with a viewing time the images are
hidden after it and the answer still counts), and the end (download the answers file, or copy its text).
Trials come in a random order per participant; the page records each choice, its response time and its
position. It holds no answer key (:mod:`.answers`).
"""

from __future__ import annotations

import html
import json

TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body{font-family:system-ui,-apple-system,sans-serif;margin:0;padding:1em;color:#222;background:#fafafa;max-width:1100px;margin:auto}
h1{font-size:1.3em}.screen{display:none}.screen.on{display:block}
#bar{height:8px;background:#ddd;border-radius:4px;margin:.5em 0 1em}#fill{height:8px;background:#3b7dd8;border-radius:4px;width:0}
.imgs{display:flex;flex-wrap:wrap;gap:1em;justify-content:center}.slot{text-align:center}
.slot img{width:min(44vw,400px);image-rendering:pixelated;border:1px solid #bbb;background:#808080;display:block}
.single .slot img{width:min(90vw,448px)}
.lab{font-weight:bold;margin:.3em 0}
.hidden img{visibility:hidden}
.btns{display:flex;gap:1em;justify-content:center;margin:1.2em 0}
button{font-size:1.1em;padding:.8em 1.6em;border-radius:8px;border:1px solid #888;background:#fff;min-width:8em;touch-action:manipulation}
button.primary{background:#3b7dd8;color:#fff;border-color:#3b7dd8}
textarea{width:100%;height:12em;font-family:monospace;font-size:12px}
.q{font-size:1.15em;text-align:center}.small{color:#666;font-size:.9em}
</style></head><body>
<div id="intro" class="screen on">
  <h1>__TITLE__</h1>
  <div id="instructions"></div>
  <p><label>Participant code (optional): <input id="pid" autocomplete="off"></label></p>
  <p class="btns"><button class="primary" id="start">Start</button></p>
</div>
<div id="trial" class="screen">
  <div id="bar"><div id="fill"></div></div>
  <p class="small" id="count"></p>
  <p class="q" id="question"></p>
  <div class="imgs" id="imgs"></div>
  <div class="btns" id="btns"></div>
</div>
<div id="end" class="screen">
  <h1>Thank you</h1>
  <p>Please send the answers file to the researcher who gave you this page.</p>
  <p class="btns"><button class="primary" id="download">Download the answers file</button></p>
  <p class="small">If the download does not work (some phones), copy this text and send it instead:</p>
  <textarea id="answers" readonly></textarea>
</div>
<script type="application/json" id="study">__STUDY__</script>
<script>
"use strict";
const S = JSON.parse(document.getElementById("study").textContent);
const $ = (id) => document.getElementById(id);
$("instructions").innerHTML = S.instructions;
let order = [], pos = 0, shownAt = 0, answers = [], started = null, timer = null, busy = false;
function fnv1a32(text) {
  const bytes = new TextEncoder().encode(text); let h = 0x811c9dc5;
  for (const b of bytes) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return h.toString(16).padStart(8, "0");
}
function shuffle(a) { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; } return a; }
function show(id) { for (const s of document.querySelectorAll(".screen")) s.classList.remove("on"); $(id).classList.add("on"); }
function slot(label, key) {
  const d = document.createElement("div"); d.className = "slot";
  if (label) { const l = document.createElement("div"); l.className = "lab"; l.textContent = label; d.appendChild(l); }
  const im = document.createElement("img"); im.src = S.images[key]; im.alt = label || "image"; d.appendChild(im); return d;
}
function button(text, choice) {
  const b = document.createElement("button"); b.textContent = text; b.dataset.choice = choice;
  b.addEventListener("click", () => answer(choice)); return b;
}
function render() {
  const t = S.trials[order[pos]];
  $("fill").style.width = (100 * pos / order.length) + "%";
  $("count").textContent = "Trial " + (pos + 1) + " of " + order.length;
  const imgs = $("imgs"), btns = $("btns"); imgs.innerHTML = ""; btns.innerHTML = ""; imgs.className = "imgs";
  if (S.design === "2afc") {
    $("question").textContent = "Which image was modified?";
    imgs.appendChild(slot("A", t.a)); imgs.appendChild(slot("B", t.b));
    btns.appendChild(button("A", "a")); btns.appendChild(button("B", "b"));
  } else {
    $("question").textContent = "Was this image modified?"; imgs.classList.add("single");
    imgs.appendChild(slot("", t.img));
    btns.appendChild(button("Yes, modified", "yes")); btns.appendChild(button("No", "no"));
  }
  busy = false; shownAt = performance.now();
  if (timer) clearTimeout(timer);
  if (S.viewing_ms > 0) timer = setTimeout(() => imgs.classList.add("hidden"), S.viewing_ms);
}
function answer(choice) {
  if (busy || !$("trial").classList.contains("on")) return;
  busy = true;
  const t = S.trials[order[pos]];
  answers.push({trial: t.id, choice: choice, rt_ms: Math.round(performance.now() - shownAt), position: pos});
  pos += 1;
  if (pos < order.length) { render(); } else { finish(); }
}
function finish() {
  if (timer) clearTimeout(timer);
  const lines = S.hash + "\n" + answers.map((a) => a.trial + "|" + a.choice + "|" + a.rt_ms).join("\n");
  const out = {format: "imperceptible-study-answers/1", study: S.hash, participant: $("pid").value.trim(),
               started: started, finished: new Date().toISOString(), user_agent: navigator.userAgent,
               viewport: [window.innerWidth, window.innerHeight], answers: answers, checksum: fnv1a32(lines)};
  const text = JSON.stringify(out, null, 1);
  $("answers").value = text; show("end");
  $("download").onclick = () => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], {type: "application/json"}));
    const who = (out.participant || "anonymous").replace(/[^A-Za-z0-9_-]/g, "_");
    a.download = "answers-" + who + "-" + out.finished.replace(/[:.]/g, "-") + ".json";
    document.body.appendChild(a); a.click(); a.remove();
  };
}
$("start").addEventListener("click", () => {
  order = shuffle([...Array(S.trials.length).keys()]); pos = 0; answers = []; started = new Date().toISOString();
  show("trial"); render();
});
document.addEventListener("keydown", (e) => {
  if (!$("trial").classList.contains("on")) return;
  const k = e.key.toLowerCase();
  if (S.design === "2afc") { if (k === "1" || k === "arrowleft" || k === "a") answer("a"); else if (k === "2" || k === "arrowright" || k === "b") answer("b"); }
  else { if (k === "y") answer("yes"); else if (k === "n") answer("no"); }
});
</script></body></html>
"""


def render_page(*, title: str, instructions_html: str, payload: dict) -> str:
    """The page for ``payload`` (``hash``, ``design``, ``viewing_ms``, ``trials``, ``images``)."""
    study = json.dumps({**payload, "instructions": instructions_html}, separators=(",", ":")).replace("</", "<\\/")
    return TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__STUDY__", study)


__all__ = ["TEMPLATE", "render_page"]
