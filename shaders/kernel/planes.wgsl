// A batch tensor as N x C planes of HW values, the shape every per-channel kernel takes
// (batch norm, LRN, channel sums; `nchw_consts` on the host): `#include "kernel/planes"`.

override N: u32;
override C: u32;
override HW: u32;
