"""The live-view page served at ``/``: one self-contained HTML file.

No external script, font, style sheet or CDN (live-view boxes are often offline); the
script is inline and allowed by its SHA-256 in the Content-Security-Policy, so nothing
else can run on the page. It reads the token from its own URL and passes it to
``video.mjpg`` and ``events``.
"""

from __future__ import annotations

import base64
import hashlib

_SCRIPT = """
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => token ? path + "?token=" + encodeURIComponent(token) : path;
const $ = (id) => document.getElementById(id);
const video = $("video");
const fmt = (value, digits) => value === null || value === undefined ? "\\u2013"
  : Number(value).toFixed(digits);
function setState(text, cls) { const s = $("state"); s.textContent = text; s.className = cls; }
function startVideo() {
  video.src = withToken("video.mjpg") + (token ? "&" : "?") + "t=" + Date.now();
}
video.addEventListener("error", () => { if (!ended) setTimeout(startVideo, 1000); });
let ended = false;
startVideo();
const events = new EventSource(withToken("events"));
events.onmessage = (message) => {
  const d = JSON.parse(message.data), f = d.figures;
  $("fps").textContent = fmt(f.fps, 1);
  $("latency").textContent = fmt(f.latency_ms, 0);
  $("people").textContent = String(f.people);
  $("dropped").textContent = String(f.dropped);
  $("frames").textContent = String(f.frames);
  $("index").textContent = String(d.index);
  $("backend").textContent = f.backend || "\\u2013";
  $("source").textContent = f.source || "\\u2013";
  $("source").title = f.source || "";
  setState("live", "live");
};
events.addEventListener("end", () => {
  ended = true; events.close(); setState("finished", "ended");
});
events.onerror = () => { if (!ended) setState("reconnecting\\u2026", "waiting"); };
"""

_STYLE = """
:root { color-scheme: dark; }
* { box-sizing: border-box; }
body { margin: 0; background: #111; color: #eee;
  font: 15px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: center; gap: .6em; padding: .5em .8em; background: #1c1c1c; }
h1 { font-size: 1.05em; margin: 0; font-weight: 600; }
#state { margin-left: auto; padding: .1em .6em; border-radius: 1em; font-size: .85em; }
#state.live { background: #1b5e20; } #state.waiting { background: #6d4c00; }
#state.ended { background: #444; }
main { display: flex; flex-wrap: wrap; gap: .8em; padding: .8em; }
#view { flex: 1 1 480px; min-width: 0; }
#video { display: block; width: 100%; height: auto; background: #000; border-radius: 4px; }
#figures { flex: 0 1 260px; display: grid; grid-template-columns: auto 1fr;
  gap: .35em .9em; align-content: start; margin: 0; }
dt { color: #9e9e9e; } dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600;
  overflow-wrap: anywhere; }
@media (max-width: 640px) { main { padding: .4em; } #figures { flex-basis: 100%;
  grid-template-columns: repeat(4, auto); font-size: .9em; } }
"""

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>simplepose live</title>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>simplepose live</h1><span id="state" class="waiting">connecting&hellip;</span></header>
<main>
<div id="view"><img id="video" alt="live pose overlay"></div>
<dl id="figures">
<dt>FPS</dt><dd id="fps">&ndash;</dd>
<dt>latency ms</dt><dd id="latency">&ndash;</dd>
<dt>people</dt><dd id="people">&ndash;</dd>
<dt>dropped</dt><dd id="dropped">&ndash;</dd>
<dt>frames</dt><dd id="frames">&ndash;</dd>
<dt>frame index</dt><dd id="index">&ndash;</dd>
<dt>backend</dt><dd id="backend">&ndash;</dd>
<dt>source</dt><dd id="source">&ndash;</dd>
</dl>
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()

#: Only this page's own inline script and style, images and events from the same server.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; "
    "style-src 'unsafe-inline'; "
    "img-src 'self'; "
    "connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
