# settle.sh — sourced by the benchmark scripts: settle_freed_memory waits until this VM's kernel has
# stopped reporting freed memory to the hypervisor (virtio-balloon free page reporting: 2 MiB blocks
# free for 2 s are handed back in passes 2 s apart, and the vCPUs stall during them). A process that
# just exited freed its whole model; without the wait, the next round's first timed tests run during
# those passes (benchmark_qwen3 waits the same way between the models of one sweep; see
# Sources/BenchSupport/FreePageReporting.swift). Returns at once where the counter does not exist;
# waits for 2.5 s of stillness, 30 s at most.
settle_freed_memory() {
    local counter=/sys/module/page_reporting/parameters/reported_kib
    [ -r "$counter" ] || return 0
    local last now still=0 ticks=0
    last=$(cat "$counter")
    while [ "$still" -lt 25 ] && [ "$ticks" -lt 300 ]; do
        sleep 0.1
        now=$(cat "$counter")
        if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; last=$now; fi
        ticks=$((ticks + 1))
    done
}
