"""A build you can look at: one self-contained HTML file. Pure functions of a report (or records).

Nothing leaves the page: inline CSS, inline SVG, a little inline JS, and a Content-Security-Policy that
forbids every fetch (`default-src 'none'`), so a stray reference fails loudly instead of calling out.
The timeline is drawn here, not in the browser: a 2,000-step build is static SVG that renders at once,
and the page reads without JS. Every status has a text and a pattern besides its colour; every step is
a focusable element (Tab, arrow keys) whose details show in a live region, and on hover as a tooltip.
"""

from __future__ import annotations

import html
import json
from typing import Any

from . import render_report as rr
from .report import Report, StageReport

STATUS_TEXT = {"cached": "cached", "built": "built", "failed": "failed", "canceled": "canceled",
               "skipped": "skipped", "unknown": "unknown"}
LANE_H = 26
LABEL_W = 150
PLOT_W = 900

CSS = """
:root{--cached:#2e7d32;--built:#1565c0;--failed:#c62828;--canceled:#9e9e9e;--wait:#ef6c00;--ink:#1b1b1b;
--muted:#5f6368;--line:#d0d4d9;--bg:#fff}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg);margin:0;padding:20px 28px;max-width:1200px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px}.sub{color:var(--muted);margin:0 0 14px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;border:1px solid currentColor}
.s-success,.s-cached{color:var(--cached)}.s-built{color:var(--built)}.s-failed{color:var(--failed)}
.s-canceled,.s-skipped,.s-unknown{color:var(--canceled)}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}th,td{text-align:left;padding:5px 8px;
border-bottom:1px solid var(--line);vertical-align:top}th{font-weight:600;color:var(--muted);font-size:12px;
text-transform:uppercase;letter-spacing:.03em}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f3f4f6;padding:1px 4px;border-radius:3px}
.timeline{overflow-x:auto;border:1px solid var(--line);border-radius:6px;padding:8px 0}
svg text{font:12px system-ui,sans-serif;fill:var(--ink)}svg .axis text{fill:var(--muted);font-size:11px}
.step{cursor:pointer}.step:focus{outline:none}.step:focus rect.bar,.step:hover rect.bar{stroke:#000;stroke-width:2}
svg text.in-bar{fill:#fff;stroke:#1b1b1b;stroke-width:3px;paint-order:stroke;font-size:11px;font-weight:600}
.lane-bg{fill:#fafafa}.lane-bg.odd{fill:#f1f3f4}
#detail{min-height:44px;border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin-top:8px;
background:#fcfcfd}#detail b{font-weight:600}
.legend span{margin-right:16px;white-space:nowrap}.legend svg{vertical-align:middle;margin-right:4px}
.delta{white-space:nowrap}.slower{color:var(--failed);font-weight:600}.faster{color:var(--cached)}
.why{color:var(--muted)}.note{color:var(--muted);font-size:13px}
.multiples{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
.multiples figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px}
.multiples figcaption{font-weight:600;margin-bottom:4px}section.build{display:none;border-top:2px solid var(--line);
margin-top:16px}section.build:target{display:block}a{color:var(--built)}
"""

# Patterns: every status readable without colour (stripes, dots, cross-hatch), and a text label.
DEFS = """<defs>
<pattern id="p-built" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#1565c0"/><rect width="2" height="6" fill="#90caf9"/></pattern>
<pattern id="p-cached" width="6" height="6" patternUnits="userSpaceOnUse">
<rect width="6" height="6" fill="#2e7d32"/><circle cx="3" cy="3" r="1.2" fill="#a5d6a7"/></pattern>
<pattern id="p-failed" width="6" height="6" patternUnits="userSpaceOnUse">
<rect width="6" height="6" fill="#c62828"/><path d="M0 0L6 6M6 0L0 6" stroke="#ffcdd2" stroke-width="1.2"/></pattern>
<pattern id="p-canceled" width="6" height="6" patternUnits="userSpaceOnUse">
<rect width="6" height="6" fill="#bdbdbd"/><path d="M0 3H6" stroke="#757575" stroke-width="1"/></pattern>
<pattern id="p-wait" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">
<rect width="6" height="6" fill="#ffe0b2"/><rect width="2" height="6" fill="#ef6c00"/></pattern>
<pattern id="p-overhead" width="4" height="4" patternUnits="userSpaceOnUse">
<rect width="4" height="4" fill="#cfd8dc"/></pattern>
</defs>"""

JS = """
(function(){
var data=JSON.parse(document.getElementById('sbuild-data').textContent);
var detail=document.getElementById('detail');
function show(el){var d=data.steps[+el.getAttribute('data-i')];if(!d||!detail)return;
 detail.innerHTML='';var b=document.createElement('b');b.textContent=d.name;detail.appendChild(b);
 var p=document.createElement('div');p.textContent=d.stage+' \\u00b7 '+d.status+' \\u00b7 '+d.duration+
 (d.start!==null?' \\u00b7 from '+d.start:'');detail.appendChild(p);
 if(d.why){var w=document.createElement('div');w.className='why';w.textContent='why: '+d.why;detail.appendChild(w);}
 if(d.error){var e=document.createElement('div');e.className='s-failed';e.textContent=d.error;detail.appendChild(e);}}
var steps=Array.prototype.slice.call(document.querySelectorAll('.step'));
steps.forEach(function(el){el.addEventListener('focus',function(){show(el)});
 el.addEventListener('mouseenter',function(){show(el)});
 el.addEventListener('keydown',function(ev){var lane=+el.getAttribute('data-lane'),i=steps.indexOf(el),t=null;
  if(ev.key==='ArrowRight'){t=steps[i+1]}else if(ev.key==='ArrowLeft'){t=steps[i-1]}
  else if(ev.key==='ArrowDown'||ev.key==='ArrowUp'){var dir=ev.key==='ArrowDown'?1:-1;
   for(var j=i;j>=0&&j<steps.length;j+=dir){if(+steps[j].getAttribute('data-lane')===lane+dir){t=steps[j];break}}}
  else if(ev.key==='Escape'){el.blur()}
  if(t){ev.preventDefault();t.focus()}});});
})();
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _secs(x: float | None) -> str:
    return "-" if x is None else rr._secs(x)


def _bytes(n: int | None) -> str:
    """A size; its sign is the caller's to write."""
    return "-" if n is None else rr._bytes(abs(n))


def _page(title: str, body: str, data: dict[str, Any]) -> str:
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n{body}\n"
            f"<script type=\"application/json\" id=\"sbuild-data\">{blob}</script><script>{JS}</script>"
            "</body></html>\n")


def _status(s: str) -> str:
    return f'<span class="badge s-{_e(s)}">{_e(STATUS_TEXT.get(s, s))}</span>'


def _legend() -> str:
    items = [("built", "built"), ("cached", "cached"), ("failed", "failed"), ("canceled", "canceled"),
             ("wait", "wait between attempts")]
    return '<p class="legend">' + "".join(
        f'<span><svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" fill="url(#p-{k})"/>'
        f"</svg>{_e(t)}</span>" for k, t in items) + "</p>"


def _step_status(cached: bool, error: str | None, stage: StageReport) -> str:
    if error:
        return "canceled" if "context canceled" in error else "failed"
    if cached:
        return "cached"
    return "canceled" if stage.status == "canceled" else "built"


def timeline(report: Report) -> tuple[str, list[dict[str, Any]]]:
    """The SVG timeline (a lane per stage, a bar per step) and the steps' details for the JS."""
    total = max(report.duration_s, max((t.started_s or 0) + t.duration_s for s in report.stages
                                       for t in s.timeline) if any(s.timeline for s in report.stages) else 0, 0.001)
    scale = PLOT_W / total
    lanes: list[tuple[str, str]] = []  # (label, svg of its bars)
    steps: list[dict[str, Any]] = []
    if report.retries:
        parts, x = [], 0.0
        unit = PLOT_W / max(1.0, sum(float(r.get("wait_s", 0)) for r in report.retries) * 3)
        for r in report.retries:
            label = f"attempt {r.get('attempt')} failed ({r.get('phase')}: {r.get('reason')}); waited " \
                    f"{float(r.get('wait_s', 0)):.1f}s"
            w = max(8.0, float(r.get("wait_s", 0)) * unit)
            parts.append(f'<g class="retry" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
                         f'<rect x="{LABEL_W + x:.1f}" y="{{y}}" width="6" height="{LANE_H - 8}" '
                         'fill="url(#p-failed)"/>'
                         f'<rect class="bar" x="{LABEL_W + x + 6:.1f}" y="{{y}}" width="{w:.1f}" height="{LANE_H - 8}"'
                         f' fill="url(#p-wait)"/></g>')
            x += w + 10
        parts.append(f'<text x="{LABEL_W + x:.1f}" y="{{ty}}">attempt {report.attempts}: the build shown below</text>')
        lanes.append((f"attempts ({report.attempts})", "".join(parts)))
    whys = {s.name: s.why for s in report.stages}
    for s in report.stages:
        bars = []
        first_miss_seen = False
        for t in s.timeline:
            if t.started_s is None:
                continue
            status = _step_status(t.cached, t.error, s)
            why = None
            if not t.cached and not first_miss_seen:
                first_miss_seen = True
                stage_why = whys.get(s.name)
                why = rr.why_text(stage_why) if stage_why else None
            i = len(steps)
            steps.append({"name": t.name, "stage": s.name, "status": status, "duration": _secs(t.duration_s),
                          "start": _secs(t.started_s), "why": why or None, "error": t.error})
            x = LABEL_W + t.started_s * scale
            w = max(2.0, t.duration_s * scale)
            label = f"{t.name}: {status}, {_secs(t.duration_s)}" + (f"; why: {why}" if why else "")
            text = ""
            if w > 60:  # a label inside wide bars: the status in words, never colour alone
                text = (f'<text x="{x + 4:.1f}" y="{{ty}}" class="in-bar">{_e(status)}</text>')
            # The <title> is the step's accessible name and its tooltip (an aria-label would say it twice).
            bars.append(f'<g class="step st-{status}" tabindex="0" role="img" data-i="{i}" data-lane="{len(lanes)}">'
                        f'<title>{_e(label)}</title><rect class="bar" x="{x:.1f}" y="{{y}}"'
                        f' width="{w:.1f}" height="{LANE_H - 8}" rx="2" fill="url(#p-{status})"/>{text}</g>')
        lanes.append((s.name, "".join(bars)))
    if report.overhead_intervals:
        spans = []
        for cat, a, b in report.overhead_intervals:
            label = f"{cat.replace('-', ' ')}: {_secs(b - a)}"
            spans.append(f'<rect x="{LABEL_W + a * scale:.1f}" y="{{y}}" width="{max(1.5, (b - a) * scale):.1f}" '
                        f'height="{LANE_H - 8}" fill="url(#p-overhead)"><title>{_e(label)}</title></rect>')
        lanes.append(("outside stages", "".join(spans)))
    height = LANE_H * len(lanes) + 26
    out = [f'<svg width="{LABEL_W + PLOT_W + 20}" height="{height}" role="group" aria-label="timeline">', DEFS]
    names = {s.name for s in report.stages}
    for n, (label, content) in enumerate(lanes):
        y = n * LANE_H
        kind = "lane stage-lane" if label in names else "lane"
        out.append(f'<g class="{kind}" data-stage="{_e(label)}"><rect class="lane-bg{" odd" if n % 2 else ""}" x="0" '
                   f'y="{y}" width="{LABEL_W + PLOT_W + 20}" height="{LANE_H}"/>'
                   f'<text x="8" y="{y + 17}">{_e(label)}</text>'
                   + content.replace("{y}", str(y + 4)).replace("{ty}", str(y + 17)) + "</g>")
    ticks = []
    step = _tick(total)
    k = 0.0
    while k <= total + 1e-9:
        x = LABEL_W + k * scale
        ticks.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{LANE_H * len(lanes)}" stroke="#e0e0e0"/>'
                     f'<text x="{x:.1f}" y="{LANE_H * len(lanes) + 16}" text-anchor="middle">{_secs(k)}</text>')
        k += step
    out.append('<g class="axis">' + "".join(ticks) + "</g></svg>")
    return "".join(out), steps


def _tick(total: float) -> float:
    for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800):
        if total / t <= 10:
            return float(t)
    return 3600.0


def _delta_cell(s: StageReport, biggest: float, slower: set[str]) -> str:
    if s.delta_s is None:
        return "<td class=\"delta\">-</td>"
    width = 60 * abs(s.delta_s) / biggest if biggest else 0
    cls = "slower" if s.name in slower else ("faster" if s.delta_s < 0 else "")
    colour = "#c62828" if s.delta_s > 0 else "#2e7d32"
    bar = (f'<svg width="64" height="10" aria-hidden="true"><rect x="{0 if s.delta_s < 0 else 2}" y="1" '
           f'width="{max(1.0, width):.1f}" height="8" fill="{colour}"/></svg>')
    word = " slower" if s.name in slower else ""
    return f'<td class="delta {cls}">{bar} {s.delta_s:+.1f}s{word} (was {_secs(s.baseline_duration_s)})</td>'


def stage_table(report: Report) -> str:
    vs = report.baseline is not None
    biggest = max((abs(s.delta_s) for s in report.stages if s.delta_s is not None), default=0.0)
    slower = set(report.regressions)
    rows = ["<table><thead><tr><th>Stage</th><th>Status</th><th>Steps</th><th>Cached</th><th>Time</th>"
            + ("<th>vs baseline</th>" if vs else "") + "<th>First miss</th><th>Why</th></tr></thead><tbody>"]
    for s in report.stages:
        rows.append(f'<tr class="stage" data-stage="{_e(s.name)}"><td>{_e(s.name)}</td><td>{_status(s.status)}</td>'
                    f'<td class="n">{s.steps}</td><td class="n">{s.cached_steps}/{s.steps}</td>'
                    f'<td class="n">{_secs(s.duration_s)}</td>' + (_delta_cell(s, biggest, slower) if vs else "")
                    + f"<td>{'<code>' + _e(s.first_miss) + '</code>' if s.first_miss else '-'}</td>"
                    f'<td class="why">{_e(rr.why_text(s.why))}</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def _summary(report: Report) -> str:
    c = report.cache
    hit = f"{c.hit_ratio:.0%} ({c.cached_steps}/{c.steps} steps)" if c.hit_ratio is not None else "no steps"
    parts = [f"{_status(report.status)} in {_secs(report.duration_s)}", f"cache {hit}"]
    if report.attempts > 1:
        parts.append(f"attempts {report.attempts}")
    return " · ".join(parts)


def build_body(report: Report, title: str) -> str:
    svg, _ = timeline(report)
    out = [f"<h1>{_e(title)}</h1>", f'<p class="sub">{_summary(report)}</p>']
    b = report.baseline
    if b:
        where = " ".join(x for x in (b.get("branch"), (b.get("commit") or "")[:7]) if x)
        out.append(f'<p class="sub">compared with build <code>{_e(b["id"])}</code>'
                   + (f" ({_e(where)})" if where else "") + ", from "
                   + {"local": "this machine's history", "registry": "the registry", "file": "a file"}.get(
                       str(b.get("source")), _e(b.get("source")))
                   + (f"; slower: {_e(', '.join(report.regressions))}" if report.regressions else "") + "</p>")
    img = report.image
    if img and img.get("size") is not None:
        change = f" ({'+' if (img.get('size_delta') or 0) >= 0 else '-'}{_bytes(img['size_delta'])} vs baseline)" \
            if img.get("size_delta") is not None else ""
        out.append(f'<p class="sub">deploy image {_bytes(img["size"])}{change}, {img.get("layers") or "?"} layers, '
                   f'<code>{_e((img.get("digest") or "")[:19])}</code></p>')
    f = report.failure
    if f is not None:
        out.append(f'<p class="s-failed"><b>failed:</b> stage {_e(f.stage or "?")} at <code>{_e(f.step)}</code>'
                   + (f" ({_e(f.location)})" if f.location else "") + "</p>")
        if f.output:
            out.append("<pre><code>" + _e("\n".join(f.output)) + "</code></pre>")
    out += ["<h2>Timeline</h2>", _legend(), f'<div class="timeline">{svg}</div>',
            '<div id="detail" aria-live="polite">Hover or focus a step (Tab, then arrow keys) for its details.</div>',
            "<h2>Stages</h2>", stage_table(report)]
    if report.overhead:
        out.append('<p class="note">outside the stages: ' + _e(" · ".join(
            f"{o.category.replace('-', ' ')} {_secs(o.duration_s)}" for o in
            sorted(report.overhead, key=lambda o: -o.duration_s))) + "</p>")
    if report.retries:
        out.append("<h2>Retries</h2><ul>" + "".join(
            f"<li>attempt {_e(r.get('attempt'))} failed ({_e(r.get('phase'))}: {_e(r.get('reason'))}), waited "
            f"{float(r.get('wait_s', 0)):.1f}s</li>" for r in report.retries) + "</ul>")
    if report.tags:
        out.append("<h2>Tags</h2><p>" + ", ".join(f"<code>{_e(t)}</code>" for t in report.tags) + "</p>")
    return "\n".join(out)


def build_page(report: Report, title: str = "sbuild build") -> str:
    """The page of one build (`--html FILE`, `sbuild history show ID --html FILE`)."""
    _, steps = timeline(report)
    return _page(title, build_body(report, title), {"steps": steps})


def diff_page(d: dict[str, Any]) -> str:
    """`sbuild diff A B --html FILE`: per stage, A against B, with delta bars, and the steps that changed."""
    a, b = d["a"], d["b"]
    biggest = max((abs(s["delta_s"]) for s in d["stages"] if s["delta_s"] is not None), default=0.0) or 1.0
    rows = ["<table><thead><tr><th>Stage / step</th><th>A</th><th>B</th><th>Delta</th><th>Cached A → B</th></tr>"
            "</thead><tbody>"]
    for s in d["stages"]:
        x, y = s["a"], s["b"]
        delta = s["delta_s"]
        bar = ""
        if delta is not None:
            colour = "#c62828" if delta > 0 else "#2e7d32"
            bar = (f'<svg width="64" height="10" aria-hidden="true"><rect y="1" width="'
                   f'{max(1.0, 60 * abs(delta) / biggest):.1f}" height="8" fill="{colour}"/></svg> ')
        dtext = "-" if delta is None else f"{delta:+.1f}s"
        ca = f"{x['cached_steps']}/{x['steps']}" if x else "-"
        cb = f"{y['cached_steps']}/{y['steps']}" if y else "-"
        slow = " <span class=slower>slower</span>" if s["regression"] else ""
        rows.append(f'<tr class="stage" data-stage="{_e(s["name"])}"><td><b>{_e(s["name"])}</b>{slow}</td>'
                    f'<td class="n">{_secs(x["duration_s"]) if x else "-"}</td>'
                    f'<td class="n">{_secs(y["duration_s"]) if y else "-"}</td>'
                    f'<td class="delta">{bar}{dtext}</td><td>{ca} → {cb}</td></tr>')
        for st in s["steps"]:
            if st["a_cached"] == st["b_cached"] and (st["delta_s"] is None or abs(st["delta_s"]) < 0.1):
                continue
            mark = {True: "cached", False: "built", None: "-"}
            sd = "-" if st["delta_s"] is None else f"{st['delta_s']:+.1f}s"
            rows.append(f'<tr><td>&nbsp;&nbsp;<code>{_e(st["step"])}</code></td>'
                        f'<td class="n">{_secs(st["a_duration_s"])}</td><td class="n">{_secs(st["b_duration_s"])}</td>'
                        f'<td class="delta">{sd}</td><td>{mark[st["a_cached"]]} → {mark[st["b_cached"]]}</td></tr>')
    rows.append("</tbody></table>")
    head = (f"<h1>sbuild diff</h1><p class=\"sub\">A <code>{_e(a['id'])}</code> ({_e(a.get('branch') or '-')} "
            f"{_e((a.get('commit') or '')[:7])}) {_status(a.get('status') or 'unknown')} {_secs(a.get('duration_s'))}"
            f" → B <code>{_e(b['id'])}</code> ({_e(b.get('branch') or '-')} {_e((b.get('commit') or '')[:7])}) "
            f"{_status(b.get('status') or 'unknown')} {_secs(b.get('duration_s'))}</p>")
    if d.get("image_size_delta") is not None:
        n = d["image_size_delta"]
        head += f'<p class="sub">deploy image {"+" if n >= 0 else "-"}{_bytes(n)}</p>'
    return _page("sbuild diff", head + "".join(rows), {"steps": []})


def history_page(records: list[dict[str, Any]], project: str | None) -> str:
    """`sbuild history --html FILE`: per stage, duration and cache hits over these builds (oldest first),
    small multiples; each point links to that build's summary, embedded below."""
    from .report import report_from_json

    records = list(reversed(records))  # oldest first, left to right
    stages: list[str] = []
    for r in records:
        for s in (r.get("report") or {}).get("stages", []):
            if s["name"] not in stages:
                stages.append(s["name"])
    figures = []
    w, h, pad = 280, 110, 24
    n = max(1, len(records) - 1)
    for name in stages:
        pts = []
        for i, r in enumerate(records):
            s = next((x for x in (r.get("report") or {}).get("stages", []) if x["name"] == name), None)
            if s is not None:
                pts.append((i, r, s))
        top = max((s["duration_s"] for _, _, s in pts), default=0.0) or 1.0
        line, hits, marks = [], [], []
        for i, r, s in pts:
            x = pad + (w - 2 * pad) * i / n
            y = h - pad - (h - 2 * pad) * s["duration_s"] / top
            ratio = s["cached_steps"] / s["steps"] if s["steps"] else 1.0
            hy = h - pad - (h - 2 * pad) * ratio
            line.append(f"{x:.1f},{y:.1f}")
            hits.append(f"{x:.1f},{hy:.1f}")
            label = (f"build {r['id']} ({r.get('branch') or '-'} {(r.get('commit') or '')[:7]}, {r.get('finished_at')})"
                     f": {name} {_secs(s['duration_s'])}, {s['cached_steps']}/{s['steps']} cached, {s['status']}")
            marks.append(f'<a href="#b-{_e(r["id"])}" aria-label="{_e(label)}"><circle class="point" cx="{x:.1f}" '
                         f'cy="{y:.1f}" r="4" fill="{"#c62828" if s["status"] == "failed" else "#1565c0"}">'
                         f"<title>{_e(label)}</title></circle></a>")
        figures.append(
            f'<figure data-stage="{_e(name)}"><figcaption>{_e(name)}</figcaption>'
            f'<svg width="{w}" height="{h}" role="img" aria-label="{_e(name)}: duration and cache hits per build">'
            f'<text x="4" y="12" class="note" style="font-size:10px">{_secs(top)}</text>'
            f'<polyline points="{" ".join(hits)}" fill="none" stroke="#2e7d32" stroke-dasharray="4 3"/>'
            f'<polyline points="{" ".join(line)}" fill="none" stroke="#1565c0" stroke-width="2"/>'
            + "".join(marks) + f'<text x="4" y="{h - 6}" style="font-size:10px">oldest</text>'
            f'<text x="{w - 40}" y="{h - 6}" style="font-size:10px">newest</text></svg></figure>')
    sections = []
    for r in reversed(records):
        rep = report_from_json(r["report"])
        title = (f"build {r['id']} · {r.get('branch') or '-'} {(r.get('commit') or '')[:7]} · "
                 f"{r.get('finished_at')}")
        sections.append(f'<section class="build" id="b-{_e(r["id"])}"><h2>{_e(title)}</h2>'
                        f'<p class="sub">{_summary(rep)}</p>{stage_table(rep)}</section>')
    body = (f"<h1>sbuild history</h1><p class=\"sub\">{_e(project or 'every project')}: the last {len(records)} "
            "builds, per stage: time (solid, scale at the top left) and the share of cached steps (dashed, "
            "0 to 100%). A point opens that build's summary below.</p>"
            f'<div class="multiples">{"".join(figures)}</div>' + "".join(sections))
    return _page("sbuild history", body, {"steps": []})
