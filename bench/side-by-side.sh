# Side-by-side benchmark: alternates runs of the reference automerge-repo server and of Kintsugi, prints a Markdown table.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: bash bench/side-by-side.sh [--runs 3] [--kintsugi PATH] | --table RESULTS.jsonl"; }
RUNS=3
TABLE_ONLY=""
KINTSUGI="${CARGO_TARGET_DIR:-target}/release/kintsugi"
DEFAULT_KINTSUGI="$KINTSUGI"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --kintsugi) KINTSUGI="$2"; shift 2 ;;
    --table) TABLE_ONLY="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

# print_table RESULTS RUNS: the Markdown table of a results file.
print_table() {
  python3 - "$1" "$2" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = int(sys.argv[2])
# (label, how to read it, higher is better)
METRICS = [
    ("edits/s", lambda r: r.get("edits_per_sec"), True),
    ("latency p50 ms", lambda r: (r.get("latency_ms") or {}).get("p50"), False),
    ("latency p99 ms", lambda r: (r.get("latency_ms") or {}).get("p99"), False),
    ("latency max ms", lambda r: (r.get("latency_ms") or {}).get("max"), False),
    ("server CPU ms/change", lambda r: r.get("server_cpu_ms_per_change"), False),
    ("client CPU ms/change", lambda r: r.get("client_cpu_ms_per_change"), False),
    ("durable pushes/s", lambda r: r.get("pushes_per_sec"), True),
    ("server disk bytes/change", lambda r: r.get("server_disk_bytes_per_change"), False),
    ("wire bytes/change", lambda r: r.get("wire_bytes_per_change"), False),
    ("server peak RSS KiB", lambda r: r.get("server_peak_rss_kib"), False),
    ("server RSS KiB/idle device", lambda r: r.get("server_rss_kib_per_idle_device"), False),
]

def fmt(x):
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"

def cell(values, n_ok):
    if not values:
        return f"failed ({n_ok}/{runs} ok)" if n_ok < runs else "n/a"
    s = f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"
    return s if n_ok == runs else s + f" ({n_ok}/{runs} ok)"

def ratio(ref, kin, higher_better):
    if ref is None or kin is None or ref <= 0 or kin <= 0:
        return "-"
    if higher_better:
        return f"{kin / ref:.2f}x"
    return f"{ref / kin:.2f}x better" if kin <= ref else f"{kin / ref:.2f}x worse"

print("| scenario | metric | reference median [min-max] | Kintsugi median [min-max] | Kintsugi vs reference |")
print("|---|---|---|---|---|")
for case in dict.fromkeys(r["case"] for r in rows):
    ok = {s: [r for r in rows if r["case"] == case and r["system"] == s and r["ok"]] for s in ("reference", "kintsugi")}
    for label, get, higher in METRICS:
        vals = {s: [v for v in map(get, ok[s]) if isinstance(v, (int, float))] for s in ok}
        if not vals["reference"] and not any(vals["kintsugi"]) and (ok["reference"] or ok["kintsugi"]):
            continue  # a metric this scenario does not measure
        ran = {s: any(r["case"] == case and r["system"] == s for r in rows) for s in ok}
        med = {s: statistics.median(v) if v else None for s, v in vals.items()}
        cells = {s: cell(vals[s], len(ok[s])) if ran[s] else "-" for s in ok}
        print(f"| {case} | {label} | {cells['reference']} | "
              f"{cells['kintsugi']} | {ratio(med['reference'], med['kintsugi'], higher)} |")
    acks = {s: "/".join(sorted({str(r.get("durable_acks")).lower() for r in ok[s]})) or "-" for s in ok}
    print(f"| {case} | durable acks | {acks['reference']} | {acks['kintsugi']} | - |")
print(f"\nRaw results: {sys.argv[1]}")
EOF
}

if [ -n "$TABLE_ONLY" ]; then
  runs="$(python3 -c 'import json,sys; print(max(json.loads(l)["run"] for l in open(sys.argv[1]) if l.strip()))' "$TABLE_ONLY")"
  print_table "$TABLE_ONLY" "$runs"
  exit 0
fi

if [ ! -x "$KINTSUGI" ] && [ "$KINTSUGI" = "$DEFAULT_KINTSUGI" ]; then
  cargo build --release -p kintsugi-cli || echo "side-by-side: cargo build failed; Kintsugi runs will fail" >&2
fi
if [ ! -d bench/reference/node_modules ]; then
  (cd bench/reference && npm ci --no-audit --no-fund >&2) || { echo "side-by-side: npm ci failed" >&2; exit 1; }
fi

mkdir -p bench/results
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="bench/results/side-by-side-$STAMP.jsonl"
LOG="bench/results/side-by-side-$STAMP.log"
# Both load generators edit as fast as they can (--rate 0), each edit yielding to the other work.
CASES=("couples --devices 10 --edits 200 --rate 0" "couples --devices 100 --edits 20 --rate 0" "idle --devices 500")

# Kintsugi alone: the reference has no durable pushes to compare with.
KINTSUGI_ONLY=("raw --devices 1000 --duration 10 --idle-devices 0")

# run_one SYSTEM CASE RUN [EXTRA [LABEL]]: runs one benchmark (CASE plus the EXTRA arguments)
# and appends one JSON line (the result, or a failure record) to $OUT, under LABEL (or CASE).
run_one() {
  local system="$1" case="$2" run="$3" extra="${4:-}" label="${5:-$2}" line rc
  local -a cmd
  # shellcheck disable=SC2206 # CASE and EXTRA are lists of words on purpose
  if [ "$system" = reference ]; then cmd=(node bench/reference/loadgen.mjs --scenario $case $extra)
  else cmd=("$KINTSUGI" bench --json --scenario $case $extra); fi
  echo "== $system $run/$RUNS: ${cmd[*]}" | tee -a "$LOG" >&2
  line="$(timeout 900 "${cmd[@]}" 2>>"$LOG" | tail -n 1; exit "${PIPESTATUS[0]}")"
  rc=$?
  python3 - "$system" "$label" "$run" "$rc" "$line" >>"$OUT" <<'EOF'
import json, sys
system, case, run, rc, line = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
try:
    result = json.loads(line)
    ok = rc == 0 and isinstance(result, dict) and not result.get("timed_out")
except ValueError:
    result, ok = {}, False
if not ok:
    print(f"   failed (exit {rc})", file=sys.stderr)
print(json.dumps({**result, "system": system, "case": case, "run": run, "exit": rc, "ok": ok}))
EOF
}

# reference_rate: edits/s per device of the last reference run in $OUT (empty if it failed).
reference_rate() {
  tail -n 1 "$OUT" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
if r.get("ok") and r.get("edits_per_sec") and r.get("devices"):
    print("%.2f" % (r["edits_per_sec"] / r["devices"]))'
}

for case in "${CASES[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    run_one reference "$case" "$run"
    rate="$(reference_rate)"
    run_one kintsugi "$case" "$run"
    # Kintsugi again at the rate the reference just sustained, for latency at equal load;
    # the reference's run is filed under this label too, so the ratio compares like with like.
    if [[ "$case" == couples* && -n "$rate" ]]; then
      paced="$case (at the reference's rate)"
      # The line before the last is this round's reference run.
      python3 - "$OUT" "$paced" <<'EOF' >>"$OUT"
import json, sys
reference = json.loads(open(sys.argv[1]).read().splitlines()[-2])
print(json.dumps({**reference, "case": sys.argv[2]}))
EOF
      run_one kintsugi "${case/--rate 0/--rate $rate}" "$run" "" "$paced"
    fi
  done
done
for case in "${KINTSUGI_ONLY[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    run_one kintsugi "$case" "$run"
  done
done

print_table "$OUT" "$RUNS" | tee "bench/results/side-by-side-$STAMP.md"
