// The entry point of a kernel with one workgroup per item (a channel, a row, a tile of the
// output), for `#include`: the workgroup's index folded over the grid's x and z (the host
// splits a dispatch past 65535 workgroups in a dimension), calling the including shader's
// `work_groups()` (how many items there are) and `work_group(i, lid)` (the work of item i,
// all WG lanes together; lid is the lane). The including shader declares WG. Whole
// workgroups pass or fail the test together, so the barriers in `work_group` stay in
// uniform control flow.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = wid.x + wid.z * nwg.x;
    if (i < work_groups()) { work_group(i, lid); }
}
