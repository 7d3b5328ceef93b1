/*
 * prof_report.c - report.html: one self-contained page (no network, no library) with SVG drawn
 * here: the timeline of one decode step, time per layer by op class, the decode latency
 * histogram, the kernels against their roofline, bytes per pseudo-channel and token, and the
 * expert fills per token. Every chart carries its element count in a data- attribute (the
 * summary's figures), and a short script checks the drawn elements against them.
 */
#include "prof/prof.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
				      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
				      "#86bcb6", "#d37295", "#a0cbe8", "#ffbe7d"};

/* A fixed color per class (the host's parts, the link, each opcode), so charts agree. */
static const char *color_of(const char *cat)
{
	static const char *const known[] = {
	    "host",	"sampling",  "router",	  "head",	    "attention",
	    "ffn",	"LINK",	     "GEMV",	  "MLA_ATTN_LANES", "RMSNORM",
	    "ROPE",	"KV_APPEND", "MOE_ROUTE", "RESIDUAL_ADD",   "GEMM_FP8",
	    "DMA_FILL", "GATHER",    "COMBINE",	  "MLA_ATTN"};
	static const char *const col[] = {"#9c755f", "#6b4c9a", "#d37295", "#b07aa1", "#4e79a7",
					  "#f28e2b", "#222222", "#76b7b2", "#e15759", "#edc948",
					  "#59a14f", "#ff9da7", "#1f77b4", "#bab0ac", "#17becf",
					  "#8c564b", "#bcbd22", "#7f7f7f", "#aec7e8"};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (cat && !strcmp(cat, known[i]))
			return col[i];
	unsigned h = 5381;
	for (const char *c = cat ? cat : ""; *c; c++)
		h = h * 33 + (unsigned char)*c;
	return palette[h % (sizeof palette / sizeof palette[0])];
}

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
	}
}

/* The decode step drawn: the one with the median latency (the first token of the steps when
 * there are none). */
static int report_token(const struct prof_summary *s)
{
	int best = 1;
	double bd = INFINITY;
	for (int i = 0; i < s->n_tok; i++) {
		double d = fabs(s->tok_ns[i] - s->tok_p50_ns);
		if (d < bd) {
			bd = d;
			best = i + 1;
		}
	}
	return s->n_tok ? best : 0;
}

static void svg_timeline(FILE *f, const struct prof *p, const struct prof_summary *s, int tk)
{
	double t0 = tk > 0 ? p->tok_end[tk - 1] : 0,
	       t1 = tk < p->n_tok ? p->tok_end[tk] : p->cursor;
	double span = t1 > t0 ? t1 - t0 : 1;
	int used[PROF_MAX_TRACKS] = {0}, row[PROF_MAX_TRACKS], nrow = 0;
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->ev[i].token == tk) {
			used[p->ev[i].track] = 1;
			n++;
		}
	for (int k = 0; k < 4; k++) /* rows: host, link, CUs, DMA */
		for (int t = 0; t < p->n_tracks; t++)
			if (used[t] && p->track[t].kind == k)
				row[t] = nrow++;
	int W = 1200, L = 150, H = 22 * nrow + 40;
	fprintf(
	    f,
	    "<h2>One decode step: step %d (the median, %.1f us)</h2>\n"
	    "<svg id=\"timeline\" data-step=\"%d\" data-slices=\"%zu\" width=\"%d\" height=\"%d\" "
	    "xmlns=\"http://www.w3.org/2000/svg\">\n",
	    tk, span / 1e3, tk, n, W, H);
	for (int t = 0; t < p->n_tracks; t++)
		if (used[t]) {
			fprintf(f, "<text x=\"4\" y=\"%d\" class=\"lbl\">", 22 * row[t] + 15);
			esc(f, p->track[t].name);
			fputs("</text>\n", f);
		}
	for (size_t i = 0; i < p->n; i++) {
		const struct prof_ev *e = &p->ev[i];
		if (e->token != tk)
			continue;
		double x = L + (e->t0 - t0) / span * (W - L - 10);
		double w = (e->t1 - e->t0) / span * (W - L - 10);
		fprintf(f,
			"<rect class=\"ev\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"18\" "
			"fill=\"%s\"><title>",
			x, 22 * row[e->track] + 2, w < 0.5 ? 0.5 : w, color_of(e->cat));
		esc(f, e->name);
		fprintf(f, " (%s", e->cat ? e->cat : "");
		if (e->layer >= 0)
			fprintf(f, ", layer %d", e->layer);
		fprintf(f, "): %.3f us", (e->t1 - e->t0) / 1e3);
		if (e->bytes)
			fprintf(f, ", %llu bytes", (unsigned long long)e->bytes);
		fputs("</title></rect>\n", f);
	}
	for (int k = 0; k <= 10; k++) {
		double x = L + k * (W - L - 10) / 10.0;
		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">%.0f "
			"us</text>\n",
			x, H - 8, span / 1e3 * k / 10);
	}
	fputs("</svg>\n", f);
}

/* Exclusive time per layer and op class over the decode steps: from the slices (overlapping
 * commands are drawn at their own durations divided by the overlap: the summary's exclusive
 * split is per op, so here each class gets its slices' share of the layer's exclusive time). */
static void svg_layers(FILE *f, const struct prof *p, const struct prof_summary *s)
{
	const char *cls[32];
	int ncls = 0;
	int nl = (int)s->n_layer;
	double *v = calloc((size_t)(nl ? nl : 1) * 32, sizeof(double)),
	       *dur = calloc(nl + 1, sizeof(double));
	if (!v || !dur) {
		free(v);
		free(dur);
		return;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct prof_ev *e = &p->ev[i];
		if (e->token < 1 || e->token >= p->n_tok || p->track[e->track].kind == PROF_DMA)
			continue;
		int li = -1;
		for (int l = 0; l < nl; l++)
			if (s->layer[l].layer == e->layer)
				li = l;
		if (li < 0)
			continue;
		int c = 0;
		while (c < ncls && strcmp(cls[c], e->cat ? e->cat : ""))
			c++;
		if (c == ncls) {
			if (ncls == 32)
				continue;
			cls[ncls++] = e->cat ? e->cat : "";
		}
		v[li * 32 + c] += e->t1 - e->t0;
		dur[li] += e->t1 - e->t0;
	}
	double mx = 0;
	for (int l = 0; l < nl; l++)
		if (s->layer[l].mean_ns > mx)
			mx = s->layer[l].mean_ns;
	int W = 1200, H = 320, B = 40, L = 60;
	double bw = nl ? (double)(W - L - 20) / nl : 1;
	fprintf(f,
		"<h2>Time per layer and op class (mean per decode step)</h2>\n"
		"<svg id=\"layers\" data-layers=\"%d\" width=\"%d\" height=\"%d\" "
		"xmlns=\"http://www.w3.org/2000/svg\">\n",
		nl, W, H + 120);
	for (int l = 0; l < nl; l++) {
		double y = H - B, scale = dur[l] > 0 ? s->layer[l].mean_ns / dur[l] : 0;
		fprintf(f, "<g class=\"bar\"><title>");
		esc(f, s->layer[l].key);
		fprintf(f, ": %.2f us</title>\n", s->layer[l].mean_ns / 1e3);
		for (int c = 0; c < ncls; c++) {
			double h = mx > 0 ? v[l * 32 + c] * scale / mx * (H - B - 10) : 0;
			if (h <= 0)
				continue;
			y -= h;
			fprintf(f,
				"<rect class=\"seg\" x=\"%.1f\" y=\"%.2f\" width=\"%.1f\" "
				"height=\"%.2f\" fill=\"%s\"><title>%s: %.2f us</title></rect>\n",
				L + l * bw + 1, y, bw - 2, h, color_of(cls[c]), cls[c],
				v[l * 32 + c] * scale / 1e3);
		}
		fprintf(
		    f,
		    "</g><text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">%s</text>\n",
		    L + (l + 0.5) * bw, H - B + 14,
		    s->layer[l].layer < 0 ? "other" : s->layer[l].key + 6);
	}
	fprintf(f, "<text x=\"4\" y=\"14\" class=\"ax\">%.1f us</text>\n", mx / 1e3);
	for (int c = 0; c < ncls; c++)
		fprintf(f,
			"<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%d\" class=\"ax\">%s</text>\n",
			L + (c % 6) * 180, H + (c / 6) * 18, color_of(cls[c]),
			L + (c % 6) * 180 + 16, H + (c / 6) * 18 + 10, cls[c]);
	fputs("</svg>\n", f);
	free(v);
	free(dur);
}

#define HIST_BINS 20

static void svg_hist(FILE *f, const struct prof_summary *s)
{
	double lo = INFINITY, hi = 0;
	for (int i = 0; i < s->n_tok; i++) {
		lo = fmin(lo, s->tok_ns[i]);
		hi = fmax(hi, s->tok_ns[i]);
	}
	if (!s->n_tok)
		lo = hi = 0;
	double w = hi > lo ? (hi - lo) / HIST_BINS : 1;
	int cnt[HIST_BINS] = {0}, mx = 1;
	for (int i = 0; i < s->n_tok; i++) {
		int b = (int)((s->tok_ns[i] - lo) / w);
		b = b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b;
		if (++cnt[b] > mx)
			mx = cnt[b];
	}
	int W = 600, H = 240, L = 40;
	fprintf(f,
		"<h2>Decode step latency (%d steps: p50 %.1f us, p99 %.1f us)</h2>\n"
		"<svg id=\"hist\" data-bins=\"%d\" data-steps=\"%d\" width=\"%d\" height=\"%d\" "
		"xmlns=\"http://www.w3.org/2000/svg\">\n",
		s->n_tok, s->tok_p50_ns / 1e3, s->tok_p99_ns / 1e3, HIST_BINS, s->n_tok, W, H);
	double bw = (W - L - 10) / (double)HIST_BINS;
	for (int b = 0; b < HIST_BINS; b++) {
		double h = (double)cnt[b] / mx * (H - 50);
		fprintf(f,
			"<rect class=\"bin\" data-n=\"%d\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"%.1f\" fill=\"#4e79a7\"><title>%.1f-%.1f us: %d</title></rect>\n",
			cnt[b], L + b * bw, H - 30 - h, bw - 1, h, (lo + b * w) / 1e3,
			(lo + (b + 1) * w) / 1e3, cnt[b]);
	}
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" class=\"ax\">%.1f us</text><text x=\"%d\" y=\"%d\" "
		"class=\"ax\" text-anchor=\"end\">%.1f us</text>\n</svg>\n",
		L, H - 12, lo / 1e3, W - 10, H - 12, hi / 1e3);
}

/* Kernels with MACs: achieved GMAC/s against intensity (MAC per byte), log-log, under the card's
 * bandwidth roof (the GEMV lanes' sustained rate) and the attention's MAC ceiling. */
static void svg_roofline(FILE *f, const struct prof_summary *s)
{
	const struct prof_card *c = &s->card;
	double bw = 0;
	for (int b = 0; c->valid && b < c->lanes && b < c->n_pcs; b++)
		bw += c->pc_gbps[b] * c->eff;
	double peak = c->lanes * c->attn_lane_macs * c->clock_mhz / 1e3; /* GMAC/s */
	int n = 0;
	for (size_t i = 0; i < s->n_op; i++)
		n += s->op[i].macs > 0 && s->op[i].bytes > 0 && s->op[i].total_ns > 0;
	int W = 600, H = 360, L = 60, B = 40;
	double x0 = log10(0.1), x1 = log10(1000), y0 = log10(0.1), y1 = log10(1e5);
#define RX(v) (L + (log10(v) - x0) / (x1 - x0) * (W - L - 10))
#define RY(v) (H - B - (log10(v) - y0) / (y1 - y0) * (H - B - 10))
	fprintf(f,
		"<h2>Kernels against their roofline (GMAC/s against MAC per byte)</h2>\n"
		"<svg id=\"roofline\" data-points=\"%d\" width=\"%d\" height=\"%d\" "
		"xmlns=\"http://www.w3.org/2000/svg\">\n",
		n, W, H);
	if (bw > 0) {
		double xa = 0.1, xb = 1000;
		if (peak > 0 && peak / bw < xb)
			xb = peak / bw;
		fprintf(
		    f,
		    "<line class=\"roof\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
		    "stroke=\"#333\"/><text x=\"%.1f\" y=\"%.1f\" class=\"ax\">%.0f GB/s</text>\n",
		    RX(xa), RY(fmax(bw * xa, 0.1)), RX(xb), RY(fmin(bw * xb, 1e5)), RX(xa) + 4,
		    RY(fmax(bw * xa, 0.1)) - 4, bw);
		if (peak > 0)
			fprintf(
			    f,
			    "<line class=\"roof\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			    "stroke=\"#333\"/><text x=\"%.1f\" y=\"%.1f\" class=\"ax\">attention "
			    "%.0f GMAC/s</text>\n",
			    RX(xb), RY(peak), RX(1000), RY(peak), RX(xb), RY(peak) - 4, peak);
	}
	for (size_t i = 0; i < s->n_op; i++) {
		const struct prof_stat *o = &s->op[i];
		if (!(o->macs > 0 && o->bytes > 0 && o->total_ns > 0))
			continue;
		double ai = fmin(fmax(o->macs / o->bytes, 0.1), 1000);
		double g = fmin(fmax(o->macs / o->total_ns, 0.1), 1e5);
		fprintf(f,
			"<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"><title>",
			RX(ai), RY(g), color_of(o->cat));
		esc(f, o->key);
		fprintf(
		    f, ": %.2f MAC/B, %.1f GMAC/s, %.1f%% of its bandwidth roof</title></circle>\n",
		    o->macs / o->bytes, o->macs / o->total_ns, 100 * o->bw_frac);
	}
	for (int k = -1; k <= 3; k++)
		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">%g</text>\n",
			RX(pow(10, k)), H - B + 14, pow(10, k));
	for (int k = -1; k <= 5; k++)
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"ax\" text-anchor=\"end\">%g</text>\n",
			L - 4, RY(pow(10, k)) + 4, pow(10, k));
	fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"ax\">MAC per byte</text>\n</svg>\n", W / 2,
		H - 8);
#undef RX
#undef RY
}

static void svg_pcheat(FILE *f, const struct prof_summary *s)
{
	int np = s->n_pcs, nt = s->n_tok;
	double mx = 0;
	for (int i = 0; i < np * nt; i++)
		mx = fmax(mx, s->pc_tok[i]);
	int cw = nt ? (1000 / nt > 2 ? 1000 / nt : 2) : 2, ch = 10, L = 50;
	if (cw > 40)
		cw = 40;
	fprintf(f,
		"<h2>Bytes per pseudo-channel and decode step (darker = more; max %.2f MB)</h2>\n"
		"<svg id=\"pcheat\" data-cells=\"%d\" width=\"%d\" height=\"%d\" "
		"xmlns=\"http://www.w3.org/2000/svg\">\n",
		mx / 1e6, np * nt, L + cw * nt + 10, ch * np + 30);
	for (int b = 0; b < np; b++) {
		if (b % 4 == 0)
			fprintf(f, "<text x=\"4\" y=\"%d\" class=\"ax\">PC %d</text>\n", ch * b + 9,
				b);
		for (int t = 0; t < nt; t++) {
			double v = s->pc_tok[(size_t)t * np + b], a = mx > 0 ? v / mx : 0;
			fprintf(f,
				"<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
				"fill=\"rgb(%d,%d,%d)\"><title>PC %d, step %d: %.3f "
				"MB</title></rect>\n",
				L + cw * t, ch * b, cw, ch, (int)(255 - 200 * a),
				(int)(255 - 150 * a), (int)(255 - 60 * a), b, t + 1, v / 1e6);
		}
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"ax\">decode steps 1..%d</text>\n</svg>\n", L,
		ch * np + 22, nt);
}

static void svg_experts(FILE *f, const struct prof_summary *s)
{
	int nt = s->n_tok, W = 600, H = 200, L = 40;
	double mx = 1, tot = 0;
	for (int t = 0; t < nt; t++) {
		mx = fmax(mx, s->fills_tok[t]);
		tot += s->fills_tok[t];
	}
	fprintf(f,
		"<h2>Expert cache over time: fills (misses) per decode step, %.0f in all</h2>\n"
		"<svg id=\"experts\" data-steps=\"%d\" width=\"%d\" height=\"%d\" "
		"xmlns=\"http://www.w3.org/2000/svg\">\n",
		tot, nt, W, H);
	double bw = nt ? (double)(W - L - 10) / nt : 1;
	for (int t = 0; t < nt; t++) {
		double h = s->fills_tok[t] / mx * (H - 40);
		fprintf(f,
			"<rect class=\"fill\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			"fill=\"#e15759\"><title>step %d: %.0f fills</title></rect>\n",
			L + t * bw, H - 20 - h, bw > 1 ? bw - 1 : bw, h, t + 1, s->fills_tok[t]);
	}
	fprintf(f, "<text x=\"4\" y=\"14\" class=\"ax\">%.0f</text>\n</svg>\n", mx);
}

static const char report_css[] =
    "body{font:14px sans-serif;margin:20px;color:#222}h1{font-size:20px}h2{font-size:16px;"
    "margin-top:28px}.lbl,.ax{font:11px sans-serif;fill:#333}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:"
    "left}svg{border:1px solid #eee}";

/* Checks every chart's drawn elements against its data- count; the page title says the result. */
static const char report_js[] =
    "(function(){var c=[['timeline','rect.ev','slices'],['layers','g.bar','layers'],"
    "['hist','rect.bin','bins'],['roofline','circle.pt','points'],['pcheat','rect.cell',"
    "'cells'],['experts','rect.fill','steps']],bad=0;c.forEach(function(x){var s="
    "document.getElementById(x[0]);if(!s){bad++;console.error('missing chart '+x[0]);"
    "return;}var n=s.querySelectorAll(x[1]).length,w=+s.getAttribute('data-'+x[2]);"
    "s.setAttribute('data-drawn',n);if(n!==w){bad++;console.error(x[0]+': drew '+n+"
    "', expected '+w);}});document.title='moecard profile: '+(bad?'MISMATCH':'ok');})();";

/* A new page at path: doctype, title, the style; NULL with errno set when it cannot be opened. */
static FILE *html_open(const char *path, const char *title)
{
	FILE *f = fopen(path, "w");
	if (f)
		fprintf(f,
			"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			"<title>%s</title><style>%s</style></head><body>\n",
			title, report_css);
	return f;
}

int prof_write_report(const struct prof *p, const struct prof_summary *s, const char *path)
{
	FILE *f = html_open(path, "moecard profile");
	if (!f)
		return -errno;
	fputs("<h1>moecard profile: ", f);
	esc(f, s->model);
	fprintf(f, "</h1>\n<p>backend %s, card ", s->backend);
	esc(f, s->card.valid ? s->card.model : "none");
	if (s->seqs > 0)
		fprintf(f,
			"; %d sequences decoded together (%d prompt tokens each, prefilled before "
			"the timeline), %d decode steps of all of them, %.1f tok/s",
			s->seqs, s->prompt_len, s->n_tok,
			s->tok_mean_ns > 0 ? s->seqs * 1e9 / s->tok_mean_ns : 0);
	fprintf(
	    f,
	    "; prompt %d tokens, %d decode steps. TTFT %.3f ms; decode step mean %.3f ms "
	    "(%.1f tok/s), p50 %.3f ms, p99 %.3f ms, max %.3f ms. A decode step: host %.1f%%, "
	    "link %.1f%%, card %.1f%% (idle in lists %.1f%%). The timeline lays host work "
	    "(monotonic clock), modeled link transfers and the card's lists (card clock) end to "
	    "end; waiting for the card does not move it.</p>\n",
	    s->prompt_len, s->n_tok, s->ttft_ns / 1e6, s->tok_mean_ns / 1e6,
	    s->tok_mean_ns > 0 ? 1e9 / s->tok_mean_ns : 0, s->tok_p50_ns / 1e6, s->tok_p99_ns / 1e6,
	    s->tok_max_ns / 1e6, s->decode_ns > 0 ? 100 * s->cls_ns[PROF_HOST] / s->decode_ns : 0,
	    s->decode_ns > 0 ? 100 * s->cls_ns[PROF_LINK] / s->decode_ns : 0,
	    s->decode_ns > 0 ? 100 * s->cls_ns[PROF_CU] / s->decode_ns : 0,
	    s->decode_ns > 0 ? 100 * s->idle_ns / s->decode_ns : 0);
	svg_timeline(f, p, s, report_token(s));
	svg_layers(f, p, s);
	svg_hist(f, s);
	svg_roofline(f, s);
	svg_pcheat(f, s);
	svg_experts(f, s);
	fputs("<h2>Top ops (decode steps, exclusive time)</h2>\n<table id=\"ops\"><tr><th>op</th>"
	      "<th>class</th><th>count</th><th>excl us</th><th>share</th><th>p50 us</th>"
	      "<th>p99 us</th><th>bw roof</th></tr>\n",
	      f);
	for (size_t i = 0; i < s->n_op && i < 25; i++) {
		const struct prof_stat *o = &s->op[i];
		fputs("<tr><td>", f);
		esc(f, o->key);
		fprintf(f,
			"</td><td>%s</td><td>%llu</td><td>%.2f</td><td>%.2f%%</td><td>%.3f</td>"
			"<td>%.3f</td><td>%.1f%%</td></tr>\n",
			o->cat ? o->cat : "", (unsigned long long)o->count, o->excl_ns / 1e3,
			s->decode_ns > 0 ? 100 * o->excl_ns / s->decode_ns : 0, o->p50_ns / 1e3,
			o->p99_ns / 1e3, 100 * o->bw_frac);
	}
	fprintf(f, "</table>\n<script>%s</script>\n</body></html>\n", report_js);
	return fclose(f) ? -EIO : 0;
}

int prof_write_sweep_html(const char *path, const char *key, const char *model, const double *v,
			  const double (*tok_s)[2], const double (*ttft)[2], int n)
{
	FILE *f = html_open(path, "moecard sweep");
	if (!f)
		return -errno;
	fputs("<h1>What-if sweep of ", f);
	esc(f, key);
	fputs(" (modeled)</h1><p>", f);
	esc(f, model);
	fputs(" and the 671B shapes; decode tok/s and TTFT against the value.</p>\n", f);
	static const char *const what[4] = {"model decode tok/s", "model TTFT ms",
					    "671B decode tok/s", "671B TTFT ms"};
	double vmin = INFINITY, vmax = -INFINITY;
	for (int i = 0; i < n; i++) {
		vmin = fmin(vmin, v[i]);
		vmax = fmax(vmax, v[i]);
	}
	for (int k = 0; k < 4; k++) {
		double ymax = 0;
		for (int i = 0; i < n; i++)
			ymax = fmax(ymax, k % 2 ? ttft[i][k / 2] : tok_s[i][k / 2]);
		int W = 420, H = 240, L = 50;
		fprintf(
		    f,
		    "<svg class=\"sweep\" data-points=\"%d\" width=\"%d\" height=\"%d\" "
		    "xmlns=\"http://www.w3.org/2000/svg\"><text x=\"4\" y=\"14\" class=\"ax\">%s "
		    "(max %.2f)</text>\n<polyline fill=\"none\" stroke=\"#4e79a7\" points=\"",
		    n, W, H, what[k], ymax);
		double px[32], py[32]; /* each point's place (a sweep has at most 32) */
		for (int i = 0; i < n && i < 32; i++) {
			double y = k % 2 ? ttft[i][k / 2] : tok_s[i][k / 2];
			px[i] =
			    L + (vmax > vmin ? (v[i] - vmin) / (vmax - vmin) : 0.5) * (W - L - 20);
			py[i] = H - 30 - (ymax > 0 ? y / ymax : 0) * (H - 60);
			fprintf(f, "%.1f,%.1f ", px[i], py[i]);
		}
		fputs("\"/>\n", f);
		for (int i = 0; i < n && i < 32; i++)
			fprintf(f,
				"<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
				"fill=\"#e15759\"><title>%g: %.3f</title></circle><text x=\"%.1f\" "
				"y=\"%d\" class=\"ax\" text-anchor=\"middle\">%g</text>\n",
				px[i], py[i], v[i], k % 2 ? ttft[i][k / 2] : tok_s[i][k / 2], px[i],
				H - 10, v[i]);
		fputs("</svg>\n", f);
	}
	fputs("</body></html>\n", f);
	return fclose(f) ? -EIO : 0;
}
