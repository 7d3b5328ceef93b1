#!/usr/bin/env bash
# test_profile_report.sh - report.html of `moecard profile` in a real browser: headless Chromium
# (Debian chromium: --headless --no-sandbox --disable-gpu, a fresh user-data-dir) opens the page
# from a profile of the tiny model on the emulated card, takes a screenshot, and the DOM it built
# is checked: the page's own check ran (title "moecard profile: ok"), each chart's SVG elements
# exist and their counts match summary.json and trace.json, and the console logged nothing (no
# error, no exception). Skips (exit 77) with a message only where chromium is not installed.
# Env: MOECARD, B, PYTHON.
set -u
M=${MOECARD:-build/moecard}
B=${B:-build}
PY=${PYTHON:-python3}
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "SKIP: chromium is not installed (make deps installs Debian's chromium)"
  exit 77
fi
mkdir -p "$B/tmp"
W=$(mktemp -d "$B/tmp/profile_report.XXXXXX")
W=$(cd "$W" && pwd)
trap 'rm -rf "$W"' EXIT
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$M" gen --out "$W/tiny" --preset tiny --seed 5 >/dev/null ||
  { echo "gen failed"; echo "0 passed, 1 failed"; exit 1; }
MOECARD_BOARD="$B/board/emu.dtb" "$M" profile --model "$W/tiny" --prompt-len 8 --gen 12 \
  --expert-slots 50% --out "$W/p" >/dev/null 2>"$W/p.err" ||
  { echo "profile failed: $(head -3 "$W/p.err")"; echo "0 passed, 1 failed"; exit 1; }

chrome() { # chrome ARGS...: one headless run on a fresh profile folder, its stderr in $W/chrome.err
  rm -rf "$W/ud"
  timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$W/ud" --enable-logging=stderr --v=0 "$@" 2>>"$W/chrome.err"
}
: >"$W/chrome.err"
chrome --window-size=1300,2800 --screenshot="$W/shot.png" "file://$W/p/report.html" >/dev/null
if [ -s "$W/shot.png" ] && [ "$(head -c 8 "$W/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
  ok "screenshot: $(stat -c %s "$W/shot.png") bytes of PNG"
else
  bad "no screenshot: $(grep -v dbus "$W/chrome.err" | tail -3)"
fi
chrome --dump-dom "file://$W/p/report.html" >"$W/dom.html"
out=$($PY - "$W" <<'PYEOF'
import json, re, sys, html.parser
W = sys.argv[1]
dom = open(f"{W}/dom.html").read()
s = json.load(open(f"{W}/p/summary.json"))
t = json.load(open(f"{W}/p/trace.json"))["traceEvents"]

class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.svg = {}; self.cur = None; self.title = ""; self.in_title = False
        self.depth = 0
    def handle_starttag(self, tag, a):
        a = dict(a)
        if tag == "svg" and a.get("id"):
            self.cur = a["id"]; self.svg[self.cur] = {"attrs": a, "n": {}}
        elif self.cur:
            k = f"{tag}.{a.get('class', '')}"
            self.svg[self.cur]["n"][k] = self.svg[self.cur]["n"].get(k, 0) + 1
            if tag == "rect" and a.get("class") == "bin":
                self.svg[self.cur].setdefault("bins", []).append(int(a["data-n"]))
        if tag == "title" and not self.cur:
            self.in_title = True
    def handle_endtag(self, tag):
        if tag == "svg":
            self.cur = None
        if tag == "title":
            self.in_title = False
    def handle_data(self, d):
        if self.in_title:
            self.title += d
p = P(); p.feed(dom)
print(int(p.title.strip() == "moecard profile: ok"), f"the page's own check: title '{p.title.strip()}'")
def chk(id_, sel, want, what):
    g = p.svg.get(id_)
    n = g["n"].get(sel, 0) if g else -1
    drawn = int(g["attrs"].get("data-drawn", -1)) if g else -1
    print(int(n == want and drawn == want and n > 0), f"{id_}: {n} {sel} drawn, {want} {what}")
step = int(p.svg["timeline"]["attrs"]["data-step"]) if "timeline" in p.svg else -1
chk("timeline", "rect.ev", sum(1 for e in t if e["ph"] == "X" and e["args"]["token"] == step),
    f"slices of step {step} in trace.json")
chk("layers", "g.bar", len(s["layers"]), "layers in summary.json")
chk("hist", "rect.bin", 20, "bins")
bins = p.svg.get("hist", {}).get("bins", [])
print(int(sum(bins) == s["decode_steps"]), f"histogram counts {sum(bins)} steps, summary {s['decode_steps']}")
chk("roofline", "circle.pt", sum(1 for o in s["ops"] if o.get("macs", 0) > 0 and o.get("bytes", 0) > 0),
    "ops with MACs and bytes in summary.json")
chk("pcheat", "rect.cell", len(s["pc_bytes_per_token"]) * s["decode_steps"], "PCs x decode steps")
chk("experts", "rect.fill", s["decode_steps"], "decode steps")
fills = sum(s["expert_fills_per_token"])
print(int(fills > 0), f"expert cache at 50%: {fills:.0f} fills over the steps")
PYEOF
)
while read -r res msg; do [ "$res" = 1 ] && ok "$msg" || bad "$msg"; done <<<"$out"
if grep -qiE 'CONSOLE|Uncaught' "$W/chrome.err"; then
  bad "console: $(grep -iE 'CONSOLE|Uncaught' "$W/chrome.err" | head -3)"
else
  ok "console: no messages, no errors"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
