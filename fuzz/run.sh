#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time; fails if any finds a crash.
#
#   fuzz/run.sh SECONDS_PER_TARGET [TARGET...]      (default targets: startup extended statements)
#
# Each target first replays its committed regressions (fuzz/regressions/<target>/*, if any),
# then fuzzes a copy of its committed corpus (fuzz/corpus/<target>/), so a CI run never grows
# the committed corpus. New crash inputs go to fuzz/artifacts/<target>/ (not committed); the
# script prints each one (hex, and the SQL text for `statements`) with the panic and backtrace.
# Per target it prints libFuzzer's executions, exec/s and coverage (final `#N ... cov: ft:`).
#
# Environment:
#   CARGO_TARGET_DIR   build directory (default /var/tmp/lakehouse-fuzz-target)
#   FUZZ_SANITIZER     none (default) | address
#   FUZZ_JOBS          cargo build jobs (default: cargo's)
#   FUZZ_KEEP_CORPUS   1: merge what the run found into fuzz/corpus/<target>/ (by hand, to
#                      refresh the committed corpus; never in CI)
#   FUZZ_SEED          libFuzzer's seed (default 1: CI runs on the same corpus try largely the
#                      same inputs, so a red run is mostly the code's doing rather than the
#                      dice's; the server's threads still vary coverage a little. 0 lets
#                      libFuzzer pick a seed: use it when exploring by hand)
#   FUZZ_ARGS          more libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# Why `--sanitizer none`: AddressSanitizer needs `-Zsanitizer` (RUSTC_BOOTSTRAP=1 on stable
# works) but doubles the build time of the ~600 instrumented crates, slows execution 2-3x and
# triples memory, while lakehouse forbids `unsafe` (`unsafe_code = "forbid"`): what these
# targets look for are panics (aborts, reported by libFuzzer), leaks of masked values,
# malformed answers, refused logins and hangs, none of which needs ASan. FUZZ_SANITIZER=address
# builds with it for a longer run by hand.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz/run.sh SECONDS_PER_TARGET [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(startup extended statements)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/lakehouse-fuzz-target}"
export CARGO_TERM_COLOR=never
sanitizer="${FUZZ_SANITIZER:-none}"
triple=x86_64-unknown-linux-gnu

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

build_flags=(--fuzz-dir . -O -s "$sanitizer")
if [ "$sanitizer" != none ]; then
  # -Zsanitizer on the stable toolchain.
  export RUSTC_BOOTSTRAP=1
fi

echo "== building fuzz targets (sanitizer: $sanitizer; target dir: $CARGO_TARGET_DIR)"
build_start=$(date +%s)
# cargo fuzz passes no -j; CARGO_BUILD_JOBS does.
if [ -n "${FUZZ_JOBS:-}" ]; then export CARGO_BUILD_JOBS="$FUZZ_JOBS"; fi
nice -n 10 cargo fuzz build "${build_flags[@]}"
echo "== build took $(( $(date +%s) - build_start )) s"

bin_dir="$CARGO_TARGET_DIR/$triple/release"
work=$(mktemp -d /tmp/lakehouse-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for target in "${targets[@]}"; do
  bin="$bin_dir/$target"
  [ -x "$bin" ] || { echo "no fuzz target $target ($bin)" >&2; exit 2; }
  mkdir -p "artifacts/$target" "$work/$target/corpus"
  if [ -d "corpus/$target" ]; then cp -r "corpus/$target/." "$work/$target/corpus/"; fi
  dict=()
  [ -f "dict/$target.dict" ] && dict=("-dict=dict/$target.dict")
  libfuzzer=(-rss_limit_mb=4096 -timeout=120 -print_final_stats=1 "-seed=${FUZZ_SEED:-1}"
             "-artifact_prefix=artifacts/$target/" "${dict[@]}")

  if compgen -G "regressions/$target/*" >/dev/null; then
    echo "== $target: replaying regressions/$target/"
    if ! "$bin" "${libfuzzer[@]}" regressions/"$target"/* >"$work/$target/regressions.log" 2>&1; then
      echo "!! $target: a committed regression fails again"
      tail -n 80 "$work/$target/regressions.log"
      failed+=("$target (regression)")
      continue
    fi
  fi

  echo "== $target: fuzzing for $seconds s"
  before=$(ls "artifacts/$target" | wc -l)
  status=0
  # shellcheck disable=SC2086
  "$bin" "${libfuzzer[@]}" -max_total_time="$seconds" ${FUZZ_ARGS:-} \
    "$work/$target/corpus" >"$work/$target/fuzz.log" 2>&1 || status=$?
  log="$work/$target/fuzz.log"
  final=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  new=$(grep -E '^stat::new_units_added' "$log" | awk '{print $2}' || true)
  rss=$(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}' || true)
  grep -E '^lakehouse-fuzz ' "$log" | tail -n 2 || true
  echo "   final:      ${final:-<none>}"
  echo "   executions: ${execs:-?}   exec/s: ${rate:-?}   new units: ${new:-?}   peak RSS: ${rss:-?} MB"
  summary+=("$target: executions=${execs:-?} exec/s=${rate:-?} $(grep -oE 'cov: [0-9]+ ft: [0-9]+' <<<"$final" || echo 'cov: ?')")
  after=$(ls "artifacts/$target" | wc -l)
  if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
    echo "!! $target: libFuzzer exited with $status"
    grep -nE 'panic|LEAK|ERROR: libFuzzer|deadly signal|timeout|Test unit written|SUMMARY' "$log" | head -n 20 || true
    echo "-- last lines of the log:"
    tail -n 120 "$log"
    for crash in $(ls -t "artifacts/$target" | head -n $(( after - before > 0 ? after - before : 1 ))); do
      echo "-- input artifacts/$target/$crash (hex, first 4 KiB):"
      head -c 4096 "artifacts/$target/$crash" | xxd | head -n 256
      if [ "$target" = statements ]; then
        echo "-- statements it generates:"
        LAKEHOUSE_FUZZ_ECHO=1 "$bin" -runs=1 "artifacts/$target/$crash" 2>&1 | grep -A3 -- '^-- statement' | head -n 60 || true
      fi
    done
    failed+=("$target")
  fi
  if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] && [ "$status" -eq 0 ]; then
    echo "== $target: merging new units into corpus/$target"
    mkdir -p "corpus/$target"
    "$bin" -merge=1 -rss_limit_mb=4096 -timeout=120 "corpus/$target" "$work/$target/corpus" \
      >"$work/$target/merge.log" 2>&1 || { tail -n 20 "$work/$target/merge.log"; failed+=("$target (merge)"); }
  fi
done

echo
echo "== fuzzing summary ($seconds s per target)"
for line in "${summary[@]}"; do echo "   $line"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (inputs under fuzz/artifacts/; see fuzz/README.md to reproduce)"
  exit 1
fi
echo "no crash"
