//! The per-layer table `vgg summary` prints.

use super::Model;
use std::fmt;

/// A model's layers with output shape, parameters, MACs and activation bytes at a batch.
pub struct Summary<'m> {
    pub model: &'m Model,
    pub batch: usize,
}

/// 1234567 -> "1,234,567".
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes in binary units with one decimal.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl Summary<'_> {
    /// Bytes of every layer's output at this batch, summed (what an executor without
    /// buffer reuse would hold).
    pub fn activation_bytes(&self) -> u64 {
        self.model
            .layers()
            .iter()
            .map(|l| (l.output_len() * self.batch * 4) as u64)
            .sum()
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.model;
        let n = self.batch;
        let [c, h, w] = m.input_dims();
        writeln!(
            f,
            "{}: input {n}x{c}x{h}x{w}, {} classes",
            m.name(),
            m.classes()
        )?;
        writeln!(
            f,
            "{:<10} {:<14} {:<20} {:>13} {:>16} {:>11}",
            "layer", "torchvision", "output", "params", "MACs", "activation"
        )?;
        for l in m.layers() {
            let [oc, oh, ow] = l.output;
            let shape = if l.flat() {
                format!("{n}x{oc}")
            } else {
                format!("{n}x{oc}x{oh}x{ow}")
            };
            let dash = |v: u64| {
                if v == 0 {
                    "-".to_string()
                } else {
                    thousands(v)
                }
            };
            writeln!(
                f,
                "{:<10} {:<14} {:<20} {:>13} {:>16} {:>11}",
                l.name,
                l.key,
                shape,
                dash(l.params()),
                dash(l.macs() * n as u64),
                bytes((l.output_len() * n * 4) as u64)
            )?;
        }
        let g = |macs: u64| {
            if macs >= 10_000_000 {
                format!("{:.2} GMAC", macs as f64 / 1e9)
            } else {
                format!("{:.2} MMAC", macs as f64 / 1e6)
            }
        };
        writeln!(
            f,
            "total: {} parameters ({}), {} MACs per image ({}), {} at batch {n}",
            thousands(m.params()),
            bytes(m.params() * 4),
            thousands(m.macs()),
            g(m.macs()),
            g(m.macs() * n as u64),
        )?;
        write!(
            f,
            "all layer outputs together: {}",
            bytes(self.activation_bytes())
        )
    }
}
