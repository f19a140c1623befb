// A batch tensor [N][C][H][W], the shape the spatial kernels take (pooling, im2col; an
// `Nchw` on the host): `#include "kernel/nchw"`.

override N: u32;
override C: u32;
override H: u32;
override W: u32;
