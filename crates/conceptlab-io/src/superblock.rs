//! The one fact of the HDF5 superblock checked before `hdf5-pure` sees a file:
//! where the file says it ends.
//!
//! A truncated file otherwise surfaces as whatever object happens to lie past
//! the cut ("missing `encoding-type`", a checksum error, an empty group): the
//! superblock's end-of-file address names the real cause in one line.

use std::io::{Read, Seek, SeekFrom};

const SIGNATURE: [u8; 8] = *b"\x89HDF\r\n\x1a\n";

/// Largest superblock the parser reads: version 0/1 with 8-byte addresses is
/// 28 + 4 * 8 bytes; version 2/3 is 12 + 4 * 8 + 4.
const SUPERBLOCK_BYTES: usize = 64;

/// What the superblock says about the file's extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The file is at least as long as the superblock declares.
    Complete,
    /// The file is `size` bytes but the superblock puts its end at `eof`.
    Truncated { size: u64, eof: u64 },
    /// No superblock could be decoded at the signature (too short, or an
    /// unknown version); `hdf5-pure` gets to report it.
    Unknown,
}

/// Reads the superblock of `file` (`size` bytes long) and compares its
/// declared end of file with `size`.
pub(crate) fn extent(file: &mut std::fs::File, size: u64) -> std::io::Result<Extent> {
    // The superblock sits at 0, 512, 1024, 2048, ...: after a user block.
    let mut at = 0u64;
    while at < size {
        let mut head = [0u8; SUPERBLOCK_BYTES];
        file.seek(SeekFrom::Start(at))?;
        let got = read_up_to(file, &mut head)?;
        if got >= SIGNATURE.len() && head[..8] == SIGNATURE {
            return Ok(match declared_end(&head[..got], at) {
                Some(eof) if eof > size => Extent::Truncated { size, eof },
                Some(_) => Extent::Complete,
                None => Extent::Unknown,
            });
        }
        at = if at == 0 { 512 } else { at * 2 };
    }
    Ok(Extent::Unknown)
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The absolute end-of-file offset a superblock found at `at` declares.
fn declared_end(sb: &[u8], at: u64) -> Option<u64> {
    let version = *sb.get(8)?;
    let (offset_size, first_address) = match version {
        0 => (*sb.get(13)?, 24),
        1 => (*sb.get(13)?, 28),
        2 | 3 => (*sb.get(9)?, 12),
        _ => return None,
    };
    let width = usize::from(offset_size);
    if !matches!(width, 2 | 4 | 8) {
        return None;
    }
    let address = |i: usize| -> Option<u64> {
        let start = first_address + i * width;
        let bytes = sb.get(start..start + width)?;
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(bytes);
        let value = u64::from_le_bytes(le);
        // All ones is HDF5's undefined address.
        (value != u64::MAX >> (64 - 8 * width as u32)).then_some(value)
    };
    // Base address first; v0/1: base, free space, EOF; v2/3: base, extension, EOF.
    let base = address(0).unwrap_or(at);
    base.checked_add(address(2)?)
}

#[cfg(test)]
mod tests {
    use super::declared_end;

    fn v0(eof: u64) -> Vec<u8> {
        let mut sb = b"\x89HDF\r\n\x1a\n".to_vec();
        sb.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0, 4, 0, 16, 0, 0, 0, 0, 0]);
        for address in [0, u64::MAX, eof, u64::MAX] {
            sb.extend_from_slice(&address.to_le_bytes());
        }
        sb
    }

    #[test]
    fn reads_the_end_of_file_of_version_0_and_2() {
        assert_eq!(declared_end(&v0(12_345), 0), Some(12_345));
        let mut v2 = b"\x89HDF\r\n\x1a\n".to_vec();
        v2.extend_from_slice(&[2, 8, 8, 0]);
        for address in [512, u64::MAX, 1000, 48] {
            v2.extend_from_slice(&address.to_le_bytes());
        }
        assert_eq!(declared_end(&v2, 512), Some(1512));
        assert_eq!(declared_end(&v2[..30], 512), None);
    }
}
