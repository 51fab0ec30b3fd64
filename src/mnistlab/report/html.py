"""The self-contained HTML report: sections (JSON-able dicts) → one page, images embedded, no server, no internet.

A section (`Section`, a JSON-able dict) is saved as `section.json` by each stage of `mnistlab run`. Figure paths are
relative to the section file's folder. Rendering is a pure function of these files.
"""
from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypedDict


class Table(TypedDict, total=False):
    title: str
    columns: list[str]
    rows: list[list[Any]]
    kind: str  # optional tag rendered as data-kind (e.g. "study": one row per value of a studied parameter)


class Figure(TypedDict):
    path: str  # relative to the section's folder
    caption: str


class Answer(TypedDict, total=False):
    """One of the brief's questions as the report opens with it: the question, its one-line answer, the figure."""

    question: str
    answer: str
    figure: str  # a figure's path in the section's `figures` (linked), or "" for the section itself


class Section(TypedDict, total=False):
    """A report section. A stage returns the content keys; `pipeline.run_stage` adds id, title, seconds, uses."""

    id: str
    title: str
    status: Literal["ok", "skipped", "failed"]
    message: str  # why it was skipped or failed
    command: str  # the command line that reproduces it
    seeds: dict[str, int] | None
    seconds: float | None
    summary: str
    paragraphs: list[str]
    tables: list[Table]
    figures: list[Figure]
    uses: dict[str, str | None]  # the keys of the stages it was built on
    answers: list[Answer]  # the brief's questions this section answers, for "results at a glance"
    conclusion: str  # what the section's own numbers say, written from them

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1.5em 2em 4em;background:#fff}
h1{margin-top:0}h2{border-bottom:2px solid #e4e7eb;padding-bottom:.2em;margin-top:2.2em}h3{margin-bottom:.3em}
nav ol{columns:2;padding-left:1.2em}code,pre{background:#f3f4f6;border-radius:4px;padding:.1em .35em;font-size:13px}
pre{padding:.6em;overflow-x:auto;white-space:pre-wrap}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:13.5px}th,td{border:1px solid #d8dce1;padding:.25em .6em;
text-align:right}th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.4em 1em 1em 0;vertical-align:top;max-width:48%}
figure img{max-width:100%;border:1px solid #e4e7eb}figcaption{font-size:12.5px;color:#555;max-width:520px}
.meta{color:#555;font-size:13px}.status-skipped,.status-failed{border-left:4px solid #d97706;padding-left:.8em}
.status-failed{border-color:#dc2626}.conclusion{background:#f1f7f1;border-left:4px solid #3a7d44;padding:.3em 1em}
table.glance td,table.glance th{text-align:left;vertical-align:top}
"""

# Runs in the browser after load: marks broken images and empty sections (read back by the headless-browser test).
CHECK_JS = """
window.addEventListener('load',()=>{const bad=[...document.images].filter(i=>!i.complete||i.naturalWidth===0);
const empty=[...document.querySelectorAll('section')].filter(s=>s.querySelectorAll('img,table,p').length===0);
document.body.dataset.brokenImages=bad.length;document.body.dataset.emptySections=empty.length;
document.body.dataset.sections=document.querySelectorAll('section').length;
document.body.dataset.glanceRows=document.querySelectorAll('#at-a-glance table tr').length-1;
document.body.dataset.conclusions=document.querySelectorAll('section .conclusion').length;
const n=[...document.querySelectorAll('table[data-kind=study]')].map(t=>t.rows.length-1);
document.body.dataset.studies=n.length;document.body.dataset.studyMinValues=n.length?Math.min(...n):0;
document.body.dataset.reportProtocolRows=[...document.querySelectorAll('td:first-child')]
.filter(td=>td.textContent.includes('report protocol')).length;});
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return html.escape(str(v)) if v is not None else "–"


def _table(t: dict) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t["columns"])
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in t["rows"])
    title = f"<h3>{html.escape(t['title'])}</h3>" if t.get("title") else ""
    kind = f" data-kind='{html.escape(t['kind'])}'" if t.get("kind") else ""
    return f"{title}<table{kind}><tr>{head}</tr>{rows}</table>"


def _figure(path: Path, caption: str, fid: str) -> str:
    if not path.is_file():
        return f"<p class=meta>missing figure {html.escape(path.name)}</p>"
    mime = "image/gif" if path.suffix.lower() == ".gif" else "image/png"
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure id='{fid}'><img alt='{html.escape(caption or path.name)}' src='data:{mime};base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_section(sec: Section, base: Path) -> str:
    sid = html.escape(sec["id"])
    parts = [f"<section id='{sid}' class='status-{sec.get('status', 'ok')}'><h2>{html.escape(sec['title'])}</h2>"]
    meta = []
    if sec.get("command"):
        meta.append(f"reproduce: <code>{html.escape(sec['command'])}</code>")
    if sec.get("seeds") is not None:
        meta.append(f"seeds: {html.escape(str(sec['seeds']))}")
    if sec.get("seconds") is not None:
        meta.append(f"time: {sec['seconds']:.0f} s")
    if meta:
        parts.append("<p class=meta>" + " · ".join(meta) + "</p>")
    if sec.get("status", "ok") != "ok":
        parts.append(f"<p><b>{html.escape(sec['status'])}</b>: {html.escape(sec.get('message', ''))}</p>")
    parts += [f"<p>{html.escape(p)}</p>" for p in sec.get("paragraphs", [])]
    parts += [_table(t) for t in sec.get("tables", [])]
    parts += [_figure(base / f["path"], f.get("caption", ""), _figure_id(sec, f["path"]))
              for f in sec.get("figures", [])]
    if sec.get("conclusion"):
        parts.append(f"<div class=conclusion><h3>Conclusion</h3><p>{html.escape(sec['conclusion'])}</p></div>")
    parts.append("</section>")
    return "".join(parts)


def _figure_id(sec: Section, path: str) -> str:
    """The anchor of a section's figure: section id + its index in the section's figures."""
    index = next((i for i, f in enumerate(sec.get("figures", [])) if f["path"] == path), None)
    return html.escape(sec["id"]) + ("" if index is None else f"-fig{index}")


def render_glance(sections: list[tuple[Section, Path]]) -> str:
    """"Results at a glance": every answered question, its one-line answer and a link to the figure that shows it."""
    rows = []
    for sec, _ in sections:
        figs = {f["path"]: f.get("caption", "") for f in sec.get("figures", [])}
        for a in sec.get("answers", []):
            fig = a.get("figure", "")
            where = figs.get(fig) or sec["title"]
            rows.append(f"<tr><td>{html.escape(a['question'])}</td><td>{html.escape(a['answer'])}</td>"
                        f"<td><a href='#{_figure_id(sec, fig)}'>{html.escape(where)}</a></td></tr>")
    if not rows:
        return ""
    return ("<section id='at-a-glance'><h2>Results at a glance</h2><table class=glance><tr><th>question</th>"
            f"<th>answer (this study's numbers)</th><th>shown in</th></tr>{''.join(rows)}</table></section>")


def render_report(sections: list[tuple[Section, Path]], *, title: str = "mnistlab report", intro: str = "") -> str:
    """[(section dict, folder its figure paths are relative to)] → a complete HTML page."""
    toc = "".join(f"<li><a href='#{html.escape(s['id'])}'>{html.escape(s['title'])}</a></li>" for s, _ in sections)
    body = "".join(render_section(s, b) for s, b in sections)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style>"
            f"<script>{CHECK_JS}</script></head><body><main><h1>{html.escape(title)}</h1>"
            f"<p class=meta>generated {stamp}</p>{f'<p>{html.escape(intro)}</p>' if intro else ''}"
            f"{render_glance(sections)}<nav><h2>Contents</h2><ol>{toc}</ol></nav>{body}</main></body></html>")
