# run_hls.tcl - Vitis HLS flow for the fp8_gemv kernel: C simulation with the kernel's test, C
# synthesis, export as a Vitis kernel (.xo). Run from the repository root:
#   vitis_hls -f hls/fp8_gemv/run_hls.tcl        (or: make hls-csynth)
# Parameters come from hls/fp8_gemv/build.cfg.
set cfg [dict create]
set fh [open "hls/fp8_gemv/build.cfg" r]
foreach line [split [read $fh] "\n"] {
    if {[regexp {^\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$} $line -> key val]} { dict set cfg $key $val }
}
close $fh
set cflags "-std=c11 -Ihls/include -I. -DFP8_GEMV_AXI_BITS=[dict get $cfg AXI_BITS]"
foreach top [dict get $cfg top] {
    open_project -reset build/hls/fp8_gemv_$top
    set_top $top
    add_files hls/fp8_gemv/fp8_gemv.c -cflags $cflags
    add_files -tb hls/tests/test_fp8_gemv.c -cflags "$cflags -Ihls/tests"
    add_files -tb hls/fp8_gemm/fp8_gemm.c -cflags $cflags
    open_solution -reset sol -flow_target vitis
    set_part [dict get $cfg PART]
    create_clock -period "[dict get $cfg CLOCK_MHZ]MHz"
    config_interface -m_axi_max_widen_bitwidth [dict get $cfg AXI_BITS]
    csim_design
    csynth_design
    export_design -format xo -output build/hls/$top.xo
    close_project
}
exit
