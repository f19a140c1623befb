//! Elementwise ops of training: the ReLU gradient, dropout, and the per-channel sums that
//! give conv and FC bias gradients. (The forward ReLU runs as a per-channel affine map with
//! fused ReLU, `batchnorm::ChannelAffine`, where no conv or FC absorbs it.)

mod channel_sum;
mod dropout;
mod relu_backward;

pub use channel_sum::channel_sum;
pub use dropout::{dropout, dropout_bits};
pub use relu_backward::relu_backward;
