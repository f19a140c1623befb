// The entry point of a kernel with one invocation per element, for `#include`: a flat index
// folded over the grid's x and z (the host splits a dispatch past 65535 workgroups in a
// dimension), calling the including shader's `elements()` (how many there are) and
// `element(i)` (the work for one).

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i < elements()) { element(i); }
}
