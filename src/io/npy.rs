//! NumPy .npy files (format version 1.0, little-endian f32, C order), for features.

use crate::error::Result;
use crate::model::Tensor;
use std::path::Path;

/// The bytes of a .npy file holding `t`.
pub fn encode(t: &Tensor) -> Vec<u8> {
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in &t.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `t` to `path` as .npy, atomically.
pub fn save(path: &Path, t: &Tensor) -> Result<()> {
    super::write_atomically(path, &encode(t))
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_aligned() {
        let t = crate::model::Tensor::new(vec![2, 3], vec![1.0; 6]).unwrap();
        let b = super::encode(&t);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert!(std::str::from_utf8(&b[10..10 + hlen])
            .unwrap()
            .contains("'shape': (2, 3)"));
        assert_eq!(b.len(), 10 + hlen + 24);
    }
}
