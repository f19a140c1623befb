// A convolution's shape (stride 1, padding KS / 2), as `ConvShape::consts` passes it to
// every conv kernel: forward, input and weight gradients (`#include "conv/shape"`).

override N: u32;
override C_IN: u32;
override C_OUT: u32;
override H: u32;
override W: u32;
override KS: u32 = 3u;
