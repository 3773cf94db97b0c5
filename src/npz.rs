//! A minimal writer of NumPy `.npz` archives: a zip of `.npy` files, stored without compression
//! (NumPy's `np.savez`). Enough for uint8 and int64 arrays.

use std::path::Path;

use crate::Error;

/// One array to store: its name (without `.npy`), NumPy dtype string, shape and raw bytes.
pub struct Array<'a> {
    pub name: &'a str,
    /// e.g. `|u1` or `<i8`.
    pub dtype: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

/// The `.npy` v1.0 encoding of one array: magic, header length, a padded dict, the data.
fn npy(a: &Array) -> Vec<u8> {
    let shape = match a.shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        a.dtype
    );
    // Pad with spaces so that magic + length + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(a.data);
    out
}

/// Writes the arrays as a stored (uncompressed) zip archive.
pub fn write(path: &Path, arrays: &[Array]) -> Result<(), Error> {
    let mut body = Vec::new();
    let mut central = Vec::new();
    for a in arrays {
        let name = format!("{}.npy", a.name);
        let data = npy(a);
        let crc = crc32fast::hash(&data);
        let offset = body.len() as u32;
        let size = data.len() as u32;
        // local file header (APPNOTE 4.3.7): version 2.0, no flags, stored, no time
        body.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        body.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        for v in [crc, size, size] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&(name.len() as u16).to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&data);
        // central directory entry (APPNOTE 4.3.12)
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]); // extra, comment, disk, internal and external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let mut end = 0x0605_4b50u32.to_le_bytes().to_vec(); // end of central directory (APPNOTE 4.3.16)
    end.extend_from_slice(&[0; 4]);
    end.extend_from_slice(&(arrays.len() as u16).to_le_bytes());
    end.extend_from_slice(&(arrays.len() as u16).to_le_bytes());
    end.extend_from_slice(&(central.len() as u32).to_le_bytes());
    end.extend_from_slice(&(body.len() as u32).to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&central);
    body.extend_from_slice(&end);
    crate::atomic::write(path, &body)
}
