//! Deterministic mutations of a seed file: bit flips, bytes and 4- or 8-byte
//! fields overwritten with boundary values, truncations, and blocks copied
//! over or into other places. Positions favour the HDF5 structures (the
//! superblock and the bytes after each structure signature), where a change
//! reaches a parser instead of a compressed value.

use std::fmt;

/// SplitMix64: tiny, seedable, and the same on every platform.
pub struct Rng(u64);

impl Rng {
    /// The generator of case `case` of a campaign seeded `seed`: every case
    /// can be replayed alone.
    pub fn for_case(seed: u64, case: u64) -> Self {
        let mut rng = Self(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, values: &[T]) -> T {
        values[self.below(values.len())]
    }
}

/// One change to a file, printed so that a failing case can be read.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip { at: usize, bit: u8 },
    Byte { at: usize, value: u8 },
    Word32 { at: usize, value: u32 },
    Word64 { at: usize, value: u64 },
    Truncate { len: usize },
    CopyOver { from: usize, to: usize, len: usize },
    Insert { at: usize, from: usize, len: usize },
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutation::Flip { at, bit } => write!(f, "flip bit {bit} at {at}"),
            Mutation::Byte { at, value } => write!(f, "byte {value:#04x} at {at}"),
            Mutation::Word32 { at, value } => write!(f, "u32 {value:#x} at {at}"),
            Mutation::Word64 { at, value } => write!(f, "u64 {value:#x} at {at}"),
            Mutation::Truncate { len } => write!(f, "truncate to {len}"),
            Mutation::CopyOver { from, to, len } => write!(f, "copy {len} bytes {from} -> {to}"),
            Mutation::Insert { at, from, len } => {
                write!(f, "insert {len} bytes from {from} at {at}")
            }
        }
    }
}

/// Signatures of the HDF5 structures whose fields parsers trust: object
/// headers (v2 and continuation), B-trees (v1 and v2), local, global and
/// fractal heaps, symbol-table nodes, fixed and extensible arrays.
const SIGNATURES: [&[u8; 4]; 14] = [
    b"OHDR", b"OCHK", b"TREE", b"HEAP", b"SNOD", b"GCOL", b"BTHD", b"BTIN", b"BTLF", b"FRHP",
    b"FHDB", b"FHIB", b"FAHD", b"EAHD",
];

/// Offsets at which structures start, plus the superblock at 0.
pub fn structure_offsets(data: &[u8]) -> Vec<usize> {
    let mut out = vec![0];
    out.extend(
        data.windows(4)
            .enumerate()
            .filter(|(_, w)| SIGNATURES.iter().any(|s| w == *s))
            .map(|(i, _)| i),
    );
    out
}

const BYTES: [u8; 6] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE];

fn words(len: u64) -> [u64; 14] {
    [
        0,
        1,
        u64::MAX,
        u64::MAX - 1,
        i64::MAX as u64,
        1 << 31,
        (1 << 31) - 1,
        1 << 32,
        (1 << 32) - 1,
        1 << 40,
        1 << 62,
        len,
        len + 1,
        len.saturating_mul(1000),
    ]
}

/// A position, three times in five within 256 bytes after a structure start.
fn position(rng: &mut Rng, len: usize, structures: &[usize]) -> usize {
    if rng.below(5) < 3 {
        let base = structures[rng.below(structures.len())];
        (base + rng.below(256)).min(len - 1)
    } else {
        rng.below(len)
    }
}

/// One to four mutations of `seed`, and what they were.
pub fn mutate(rng: &mut Rng, seed: &[u8], structures: &[usize]) -> (Vec<u8>, Vec<Mutation>) {
    let mut data = seed.to_vec();
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(4) {
        if data.len() < 16 {
            break;
        }
        let len = data.len();
        let at = position(rng, len, structures);
        let m = match rng.below(20) {
            0..=5 => Mutation::Flip {
                at,
                bit: rng.below(8) as u8,
            },
            6..=9 => Mutation::Byte {
                at,
                value: rng.pick(&BYTES),
            },
            10..=11 => Mutation::Word32 {
                at: at.min(len - 4),
                value: rng.pick(&words(len as u64)) as u32,
            },
            12..=15 => Mutation::Word64 {
                at: at.min(len - 8),
                value: rng.pick(&words(len as u64)),
            },
            16 => Mutation::Truncate {
                len: rng.below(len),
            },
            17..=18 => {
                let n = 1 + rng.below(64);
                Mutation::CopyOver {
                    from: rng.below(len - n.min(len - 1)),
                    to: at.min(len - n.min(len - 1)),
                    len: n.min(len - 1),
                }
            }
            _ => {
                let n = 1 + rng.below(64).min(len - 2);
                Mutation::Insert {
                    at,
                    from: rng.below(len - n),
                    len: n,
                }
            }
        };
        apply(&mut data, &m);
        done.push(m);
    }
    (data, done)
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Flip { at, bit } => data[at] ^= 1 << bit,
        Mutation::Byte { at, value } => data[at] = value,
        Mutation::Word32 { at, value } => data[at..at + 4].copy_from_slice(&value.to_le_bytes()),
        Mutation::Word64 { at, value } => data[at..at + 8].copy_from_slice(&value.to_le_bytes()),
        Mutation::Truncate { len } => data.truncate(len),
        Mutation::CopyOver { from, to, len } => data.copy_within(from..from + len, to),
        Mutation::Insert { at, from, len } => {
            let block = data[from..from + len].to_vec();
            data.splice(at..at, block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_case_gives_the_same_file() {
        let seed: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let structures = structure_offsets(&seed);
        let a = mutate(&mut Rng::for_case(7, 3), &seed, &structures).0;
        let b = mutate(&mut Rng::for_case(7, 3), &seed, &structures).0;
        let c = mutate(&mut Rng::for_case(7, 4), &seed, &structures).0;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
