//! The optimiser.

mod sgd;

pub use sgd::{hyper, overflow, sgd, HYPER, OVERFLOW};
