#!/usr/bin/env bash
# `make fuzz`: builds BatonFuzz with libFuzzer and AddressSanitizer in its own scratch path
# (.build-fuzz, -DFUZZING), then fuzzes every target for FUZZ_SECONDS (default 60) each, starting
# from its seed corpus in Tests/Fuzz/corpus/<target>/. FUZZ_TARGETS="a b" runs only those.
# New inputs libFuzzer finds go to .build-fuzz/corpus/<target>/ (kept between runs, never in git);
# a crashing input goes to .build-fuzz/crashes/. Exits 1 when any target crashed, naming the input.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-60}
swift=${SWIFT:-swift}
# SwiftPM's --sanitize=fuzzer is needed for linking (it then links libFuzzer's main instead of
# renaming the executable's entry point), but it passes each --sanitize as its own -sanitize=
# flag, in an order that varies, and the last one wins: `--sanitize=fuzzer --sanitize=address`
# built without coverage about half the time. One combined -Xswiftc flag comes last and wins.
build=(--product BatonFuzz --scratch-path .build-fuzz --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
    -Xswiftc -DFUZZING)

# ld.gold warns "Cannot export local symbol" for every ASan helper; harmless (docs/FUZZING.md).
"$swift" build "${build[@]}" 2>&1 | { grep -v "Cannot export local symbol" || true; }
binary="$("$swift" build "${build[@]}" --show-bin-path)/BatonFuzz"
targets=${FUZZ_TARGETS:-$(ls Tests/Fuzz/corpus)}

mkdir -p .build-fuzz/crashes .build-fuzz/logs
failed=()
for target in $targets; do
    [ -d "Tests/Fuzz/corpus/$target" ] || { echo "fuzz: no seed corpus Tests/Fuzz/corpus/$target" >&2; exit 2; }
    mkdir -p ".build-fuzz/corpus/$target"
    log=".build-fuzz/logs/$target.log"
    # Leak detection off, as in `make test-asan`: Foundation keeps caches alive that LeakSanitizer
    # reports; memory errors and crashes still fail the run. -timeout: an input that takes 10 s is a hang.
    # SWIFT_BACKTRACE off: Swift's crash handler reads memory that ASan then reports as a second crash.
    if SWIFT_BACKTRACE=enable=no BATON_FUZZ_TARGET=$target "$binary" -max_total_time="$seconds" -timeout=10 -detect_leaks=0 \
        -print_final_stats=1 -artifact_prefix=".build-fuzz/crashes/$target-" \
        ".build-fuzz/corpus/$target" "Tests/Fuzz/corpus/$target" >"$log" 2>&1; then
        counters=$(sed -n 's/^INFO: Loaded 1 modules *(\([0-9]*\) inline 8-bit counters.*/\1/p' "$log" | head -1)
        if [ "${counters:-0}" -lt 1000 ]; then
            failed+=("$target")
            echo "fuzz $target: the binary has ${counters:-no} coverage counters: built without -sanitize=fuzzer? ($log)" >&2
            continue
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        echo "fuzz $target: ${seconds}s, $runs executions ($rate/s), no crash"
    else
        failed+=("$target")
        echo "fuzz $target: CRASH (full log: $log)" >&2
        grep -E "property violated|Fatal error|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY" "$log" | head -5 >&2 || true
        input=$(sed -n 's/.*Test unit written to //p' "$log" | head -1)
        echo "  crashing input saved to: ${input:-(none written; see the log)}" >&2
        # Printed too, so a crash on a CI machine can be rebuilt from its log: base64 -d > FILE.
        [ -z "$input" ] || echo "  the input, base64: $(head -c 4096 "$input" | base64 -w0)" >&2
        echo "  replay it: BATON_FUZZ_TARGET=$target $binary $input" >&2
        echo "  or without libFuzzer: swift build --product BatonFuzz && .build/debug/BatonFuzz $target $input" >&2
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}; turn each into a regression test (docs/FUZZING.md)" >&2
    exit 1
fi
