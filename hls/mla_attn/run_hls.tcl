# run_hls.tcl - Vitis HLS flow for the mla_attn kernel: C simulation with the kernel's test, C
# synthesis, export as a Vitis kernel (.xo). Run from the repository root:
#   vitis_hls -f hls/mla_attn/run_hls.tcl        (or: make hls-csynth)
# Parameters come from hls/mla_attn/build.cfg.
set cfg [dict create]
set fh [open "hls/mla_attn/build.cfg" r]
foreach line [split [read $fh] "\n"] {
    if {[regexp {^\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$} $line -> key val]} { dict set cfg $key $val }
}
close $fh
set cflags "-std=c11 -Ihls/include -I. -DFP8_GEMM_AXI_BITS=[dict get $cfg AXI_BITS]"
if {[dict exists $cfg TM]} {
    append cflags " -DFP8_GEMM_TM=[dict get $cfg TM] -DFP8_GEMM_TN=[dict get $cfg TN] -DFP8_GEMM_MB=[dict get $cfg MB]"
}
foreach top [dict get $cfg top] {
    open_project -reset build/hls/mla_attn_$top
    set_top $top
    add_files hls/mla_attn/mla_attn.c -cflags $cflags
    add_files hls/mla_attn/mla_attn_lanes.c -cflags "$cflags -DMLA_LANE_MACS=[dict get $cfg LANE_MACS] -DMLA_LANE_IMACS=[dict get $cfg LANE_IMACS]"
    if {[string match *_lanes $top]} {
        add_files -tb hls/tests/test_mla_attn_lanes.c -cflags "$cflags -Ihls/tests"
    } else {
        add_files -tb hls/tests/test_mla_attn.c -cflags "$cflags -Ihls/tests"
    }
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
