"""report.html: the report.json numbers drawn with plotly, in one self-contained file (plotly.js inlined).

Every chart is a ``<div class="mdr-chart" id="chart-...">``; ``charts(data)`` lists exactly the ids
a report has, so the render test can check each of them drew.
"""
from __future__ import annotations

import html
import json
import math

from pipeline.reports.data import RULES_LEGEND, few_words

SAMPLE_LINES = 6


def _fig_div(fig, div_id: str, height: int = 420) -> str:
    fig.update_layout(height=height, margin=dict(l=60, r=30, t=50, b=50), template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _funnel(data: dict):
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots
    steps = data["funnel"]
    with_chars = [s for s in steps if s["chars"] is not None]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("documents", "characters of text"), horizontal_spacing=0.18)
    fig.add_trace(go.Funnel(y=[s["step"] for s in steps], x=[s["docs"] for s in steps], name="documents",
                            textinfo="value+percent previous"), row=1, col=1)
    if with_chars:
        fig.add_trace(go.Funnel(y=[s["step"] for s in with_chars], x=[s["chars"] for s in with_chars],
                                name="characters", textinfo="value+percent initial"), row=1, col=2)
    w = data.get("warc_records")
    of = (f" (from {w['http_responses']:,} HTTP responses among {w['records']:,} WARC records)" if w else "")
    fig.update_layout(title=f"What is left after each stage{of}", showlegend=False)
    return fig


def _removed(data: dict):
    from plotly import graph_objects as go
    stages = [s["stage"] for s in data["stages"]]
    reasons: list[str] = []
    for by_reason in data["removed"].values():
        reasons += [r for r in by_reason if r not in reasons]
    fig = go.Figure()
    for r in reasons:
        fig.add_trace(go.Bar(y=stages, x=[data["removed"][s].get(r, 0) for s in stages], name=r, orientation="h"))
    fig.update_layout(barmode="stack", title="Documents removed, by stage and reason", xaxis_title="documents",
                      yaxis=dict(autorange="reversed"))
    return fig


def _languages(data: dict):
    from plotly import graph_objects as go
    series = {f"kept after {k}": v for k, v in data["languages"]["kept"].items()}
    series.update({f"removed, {k}": v for k, v in data["languages"]["removed"].items()})
    total: dict[str, int] = {}
    for v in series.values():
        for lang, n in v.items():
            total[lang] = total.get(lang, 0) + n
    langs = sorted(total, key=lambda lang: -total[lang])[:30]
    fig = go.Figure([go.Bar(x=langs, y=[v.get(lang, 0) for lang in langs], name=name) for name, v in series.items()])
    fig.update_layout(barmode="group", title="Languages (fastText lid.176 labels)", yaxis_title="documents")
    return fig


def _lengths(data: dict):
    from plotly import graph_objects as go
    fig = go.Figure()
    for stage, h in data["lengths"].items():
        centers = [math.sqrt(a * b) for a, b in h["bins"]]
        fig.add_trace(go.Scatter(x=centers, y=h["counts"], name=f"kept after {stage}", mode="lines",
                                 line_shape="hvh", customdata=[f"{a:,.0f}-{b:,.0f}" for a, b in h["bins"]],
                                 hovertemplate="%{customdata} chars: %{y} docs"))
    fig.update_layout(title="Document length (characters) after each stage", xaxis=dict(type="log", title="characters"),
                      yaxis_title="documents")
    return fig


def _clusters(data: dict):
    from plotly import graph_objects as go
    c = data["duplicate_clusters"]
    sizes = list(c["sizes"])
    fig = go.Figure(go.Bar(x=sizes, y=[c["sizes"][s] for s in sizes], name="clusters"))
    fig.update_layout(title=f"Near-duplicate cluster sizes ({c.get('minhash') or 'MinHash'}, "
                            f"{c.get('components') or 0:,} clusters, largest {c.get('largest') or 0:,})",
                      xaxis=dict(type="category", title="documents in the cluster"),
                      yaxis=dict(title="clusters", type="log" if sizes else "linear"))
    return fig


def _score(s: dict):
    from plotly import graph_objects as go
    edges = s["edges"]
    centers = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    width = edges[1] - edges[0]
    fig = go.Figure(go.Bar(x=centers, y=s["kept"], width=width, name="kept"))
    for reason, counts in s["removed"].items():
        fig.add_trace(go.Bar(x=centers, y=counts, width=width, name=f"removed: {reason}"))
    if s["threshold"] is not None:
        fig.add_vline(x=s["threshold"], line_dash="dash", line_color="crimson",
                      annotation_text=f"threshold {s['threshold']:g}", annotation_position="top")
    fig.update_layout(barmode="stack", title=f"{s['score']} ({s['stage']})", xaxis=dict(title=s["score"], range=[0, 1]),
                      yaxis_title="documents")
    return fig


def _domains(data: dict):
    from plotly import graph_objects as go
    rows = data["top_removed_domains"]
    keys = sorted({k for r in rows for k in r["by_reason"]})
    fig = go.Figure([go.Bar(y=[r["domain"] for r in rows], x=[r["by_reason"].get(k, 0) for r in rows], name=k,
                            orientation="h") for k in keys])
    fig.update_layout(barmode="stack", title=f"Top {len(rows)} domains by documents removed", xaxis_title="documents",
                      yaxis=dict(autorange="reversed"))
    return fig


def _timings(data: dict):
    from plotly import graph_objects as go
    t = data["timings"]
    fig = go.Figure(go.Bar(y=list(t), x=list(t.values()), orientation="h", text=[f"{v:,.1f}s" for v in t.values()]))
    fig.update_layout(title="Wall-clock time per stage", xaxis_title="seconds", yaxis=dict(autorange="reversed"))
    return fig


def chart_specs(data: dict) -> list[tuple[str, object, int]]:
    """(div id, figure builder, height) for every chart this report has data for."""
    specs = [("chart-funnel", _funnel, 460), ("chart-removed", _removed, 120 + 60 * len(data["stages"]))]
    if data["languages"]["kept"] or data["languages"]["removed"]:
        specs.append(("chart-languages", _languages, 420))
    if data["lengths"]:
        specs.append(("chart-lengths", _lengths, 420))
    if data["duplicate_clusters"] is not None:
        specs.append(("chart-clusters", _clusters, 380))
    for s in data["scores"]:
        specs.append((f"chart-score-{s['stage']}-{s['score']}", lambda d, s=s: _score(s), 380))
    if data["top_removed_domains"]:
        specs.append(("chart-domains", _domains, 160 + 22 * len(data["top_removed_domains"])))
    specs.append(("chart-timings", _timings, 120 + 50 * len(data["timings"])))
    return specs


def charts(data: dict) -> list[str]:
    return [i for i, _, _ in chart_specs(data)]


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return " ".join(f"{k}:{x}" for k, x in v.items())
    if isinstance(v, list):
        return " ".join(map(str, v))
    return f"{v:,}" if isinstance(v, int) else str(v)


def _filter_languages_table(data: dict) -> str:
    """Documents and characters the filter kept per language, and the rules each language was judged by."""
    rows = data.get("filter_languages") or []
    if not rows:
        return ""
    head = ("lang", "docs in", "docs kept", "kept %", "chars in", "chars kept", "rules", "tokenizer", "min words",
            "mean word len", "min alpha share", "stop words (min)", "max dup line", "max top n-gram",
            "max dup n-gram", "max line-removed share")
    body = []
    for r in rows:
        pct = f"{100 * r['docs_kept_share']:.1f}" if r["docs_kept_share"] is not None else "-"
        cells = (r["lang"], r["docs_in"], r["docs_kept"], pct, r["chars_in"], r["chars_kept"], r["rules"],
                 r["tokenizer"], r["min_words"], f"{_fmt(r['min_mean_word_len'])}-{_fmt(r['max_mean_word_len'])}",
                 r["min_alpha_words_share"], f"{few_words(r['stop_words'])} ({_fmt(r['min_stop_words'])})",
                 r["max_dup_line_frac"], r["max_top_ngram_char_frac"], r["max_dup_ngram_char_frac"],
                 r["max_removed_words_share"])
        body.append("<tr>" + "".join(f"<td>{_esc(_fmt(c))}</td>" for c in cells) + "</tr>")
    return (f"<h2>Filter by language</h2><p>rules: {_esc(RULES_LEGEND)}.</p><table class='summary'><tr>"
            + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(body) + "</table>")


def _summary_table(data: dict) -> str:
    head = ("stage", "in", "kept", "kept %", "characters kept", "removed (top reasons)", "failed inputs", "seconds",
            "config")
    rows = []
    for s in data["stages"]:
        top = sorted(s["removed"].items(), key=lambda kv: -kv[1])[:5]
        pct = f"{100 * s['kept'] / s['in']:.1f}" if s["in"] else "-"
        chars = f"{s['chars']:,}" if s["chars"] is not None else "-"
        rows.append("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in (
            s["stage"], f"{s['in']:,}", f"{s['kept']:,}", pct, chars, ", ".join(f"{k} {v:,}" for k, v in top),
            len(s["failed_inputs"]), f"{s['seconds']:,.1f}", s["config_hash"])) + "</tr>")
    return ("<table class='summary'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows)
            + "</table>")


def _records(data: dict) -> str:
    w = data.get("warc_records")
    if not w:
        return ""
    types = ", ".join(f"{t} {n:,}" for t, n in w["by_type"].items())
    return (f"<p>extract read {w['records']:,} WARC records ({_esc(types)}); its {w['http_responses']:,} HTTP "
            f"responses are the documents the counts start from (the other records are WARC bookkeeping).</p>")


def _pii(data: dict) -> str:
    from pipeline.reports.data import pii_summary
    if "filter" not in {s["stage"] for s in data["stages"]}:
        return ""
    return f"<p id='pii'>PII redaction (filter stage): {_esc(pii_summary(data.get('pii')))}</p>"


def _params(data: dict) -> str:
    out = []
    for s in data["stages"]:
        out.append(f"<details><summary>{_esc(s['stage'])} parameters (config {_esc(s['config_hash'])}, input "
                   f"{_esc(s['input'])})</summary><pre>{_esc(json.dumps(s['params'], indent=1, sort_keys=True))}"
                   f"</pre></details>")
        if s["failed_inputs"]:
            items = "".join(f"<li>{_esc(f['file'])}: {_esc(f['error'])}</li>" for f in s["failed_inputs"][:50])
            out.append(f"<p>failed inputs of {_esc(s['stage'])}:</p><ul>{items}</ul>")
    return "".join(out)


def _samples(data: dict) -> str:
    out = []
    for stage, by_reason in data["samples"].items():
        out.append(f"<h3>{_esc(stage)}</h3>")
        for reason, rows in by_reason.items():
            n = next((s["removed"].get(reason, 0) for s in data["stages"] if s["stage"] == stage), 0)
            out.append(f"<h4>{_esc(reason)} <small>({n:,} removed)</small></h4><ul class='samples'>")
            for r in rows:
                text = "\n".join((r["text"] or "").splitlines()[:SAMPLE_LINES]) if r["text"] else None
                body = f"<pre>{_esc(text)}</pre>" if text else "<p class='muted'>(no text: removed before extraction, or not kept by run.audit)</p>"
                out.append(f"<li><a href='{_esc(r['url'] or '')}'>{_esc(r['url'] or r['id'])}</a> "
                           f"<code>{_esc(r['id'])}</code><br><code>{_esc(json.dumps(r['details'], sort_keys=True))}"
                           f"</code>{body}</li>")
            out.append("</ul>")
    return "".join(out) or "<p>no removed documents</p>"


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1280px;color:#222}
h1{font-size:1.5em} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table.summary{border-collapse:collapse;font-size:.9em} table.summary td,table.summary th{border:1px solid #ddd;
padding:4px 8px;text-align:right} table.summary td:first-child,table.summary td:nth-child(6){text-align:left}
pre{white-space:pre-wrap;background:#f7f7f7;padding:6px;font-size:.85em;max-height:12em;overflow:auto}
.muted,small{color:#777} .mdr-chart{margin:12px 0} ul.samples li{margin-bottom:10px}
"""


def render(data: dict) -> str:
    """The whole report page as one HTML string (about 5 MB: plotly.js is inlined)."""
    from plotly.offline import get_plotlyjs
    divs = []
    for div_id, build, height in chart_specs(data):
        divs.append(f"<div class='mdr-chart' data-chart='{_esc(div_id)}'>{_fig_div(build(data), div_id, height)}"
                    f"</div>")
    hashes = " · ".join(f"{s['stage']} {s['config_hash']}" for s in data["stages"])
    notes = "".join(f"<p class='muted'>note: {_esc(n)}</p>" for n in data["notes"])
    title = f"mdr report: {data['root']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{_esc(title)}</h1>
<p class="muted">configs: {_esc(hashes)} · generated {_esc(data['generated'])} from the stage manifests
(report.json beside this file holds every number)</p>
{notes}
<h2>Stages</h2>
{_summary_table(data)}
{_records(data)}
{_pii(data)}
{_params(data)}
{_filter_languages_table(data)}
<h2>Charts</h2>
{''.join(divs)}
<h2>Examples of removed documents, per reason</h2>
{_samples(data)}
</body></html>
"""
