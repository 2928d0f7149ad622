//! Concept corruptions: the paper's Missing (drop),
//! Irrelevant (add), Incorrect (noise) and Duplicated (duplicate) settings.
//!
//! Differences from the reference, all deliberate: randomness comes from the
//! caller's seeded stream instead of numpy's global generator; asking for more
//! columns than exist is an error (the reference built the error but never
//! raised it); a float count such as `1.0` is accepted; the protected (target)
//! concept keeps its position instead of being moved to the end; and a
//! duplicated source column keeps the provenance `original`, only its copies
//! are marked `duplicate_{k}`.

use conceptlab_core::random::{self, Rng};
use rand::seq::SliceRandom;

use crate::SynthError;

/// A binary concept table: `n_rows x names.len()`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ConceptTable {
    pub names: Vec<String>,
    pub values: Vec<u8>,
    pub n_rows: usize,
    /// Where each column came from: `original`, `added`, `noisy` or
    /// `duplicate_{k}` (a copy of original column `k`).
    pub provenance: Vec<String>,
}

impl ConceptTable {
    pub fn new(names: Vec<String>, values: Vec<u8>, n_rows: usize) -> Result<Self, SynthError> {
        if values.len() != n_rows * names.len() {
            return Err(SynthError::InvalidRequest(format!(
                "concept table has {} values, expected {n_rows} rows x {} columns",
                values.len(),
                names.len()
            )));
        }
        let provenance = vec!["original".to_owned(); names.len()];
        Ok(Self {
            names,
            values,
            n_rows,
            provenance,
        })
    }

    pub fn n_cols(&self) -> usize {
        self.names.len()
    }

    /// Column `j` as a vector.
    pub fn column(&self, j: usize) -> Vec<u8> {
        let k = self.n_cols();
        (0..self.n_rows).map(|i| self.values[i * k + j]).collect()
    }

    fn from_columns(
        names: Vec<String>,
        columns: Vec<Vec<u8>>,
        provenance: Vec<String>,
        n_rows: usize,
    ) -> Self {
        let k = columns.len();
        let mut values = vec![0u8; n_rows * k];
        for (j, col) in columns.iter().enumerate() {
            for (i, &v) in col.iter().enumerate() {
                values[i * k + j] = v;
            }
        }
        Self {
            names,
            values,
            n_rows,
            provenance,
        }
    }
}

/// How many columns a corruption touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// An absolute number of columns (`n_mod >= 1` in the reference).
    Count(usize),
    /// A share of the eligible columns (`0 < n_mod < 1`): rounded half to
    /// even, then clamped to `[1, n - 1]`.
    Fraction(f64),
    /// Every eligible column.
    All,
}

impl Amount {
    /// The reference's `n_mod` convention: 0 means nothing, below 1 a share,
    /// otherwise a count.
    pub fn from_n_mod(n_mod: f64) -> Result<Self, SynthError> {
        if !(n_mod >= 0.0 && n_mod.is_finite()) {
            return Err(SynthError::InvalidRequest(format!(
                "n_mod must be a non-negative number, found {n_mod}"
            )));
        }
        if n_mod < 1.0 {
            Ok(if n_mod == 0.0 {
                Amount::Count(0)
            } else {
                Amount::Fraction(n_mod)
            })
        } else if n_mod.fract() == 0.0 {
            Ok(Amount::Count(n_mod as usize))
        } else {
            Err(SynthError::InvalidRequest(format!(
                "n_mod >= 1 must be a whole number of columns, found {n_mod}"
            )))
        }
    }

    fn resolve(self, eligible: usize) -> Result<usize, SynthError> {
        match self {
            Amount::All => Ok(eligible),
            Amount::Count(m) if m > eligible => Err(SynthError::InvalidRequest(format!(
                "cannot corrupt {m} concepts: only {eligible} are eligible (the target concept is never corrupted)"
            ))),
            Amount::Count(m) => Ok(m),
            Amount::Fraction(share) => {
                if eligible < 2 {
                    return Ok(eligible.min(1));
                }
                let m = round_half_even(eligible as f64 * share) as usize;
                Ok(m.clamp(1, eligible - 1))
            }
        }
    }
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// A corruption of concept annotations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Corruption {
    /// Leave the table unchanged ("Clean").
    Identity,
    /// Delete columns ("Missing").
    Drop,
    /// Append columns of independent Bernoulli(`p_active`) noise ("Irrelevant").
    Add { p_active: f64 },
    /// Flip each entry of chosen columns with probability `p_noise` ("Incorrect").
    Noise { p_noise: f64 },
    /// Append `n_replica` copies of chosen columns ("Duplicated").
    Duplicate { n_replica: usize },
}

/// Applies `corruption` to `amount` columns of `table`, never touching the
/// column named `protected` (the concept to be edited).
pub fn corrupt(
    table: &ConceptTable,
    corruption: Corruption,
    amount: Amount,
    protected: Option<&str>,
    rng: &mut Rng,
) -> Result<ConceptTable, SynthError> {
    if let Some(name) = protected
        && !table.names.iter().any(|n| n == name)
    {
        return Err(SynthError::InvalidRequest(format!(
            "protected concept `{name}` is not in the table"
        )));
    }
    let eligible: Vec<usize> = (0..table.n_cols())
        .filter(|&j| Some(table.names[j].as_str()) != protected)
        .collect();
    let n = table.n_rows;
    let mut names = table.names.clone();
    let mut provenance = table.provenance.clone();
    let mut columns: Vec<Vec<u8>> = (0..table.n_cols()).map(|j| table.column(j)).collect();
    let pick = |rng: &mut Rng, m: usize| -> Vec<usize> {
        let mut chosen = eligible.clone();
        chosen.shuffle(rng);
        chosen.truncate(m);
        chosen.sort_unstable();
        chosen
    };
    match corruption {
        Corruption::Identity => {}
        Corruption::Drop => {
            let m = amount.resolve(eligible.len())?;
            let gone = pick(rng, m);
            let keep: Vec<usize> = (0..table.n_cols()).filter(|j| !gone.contains(j)).collect();
            names = keep.iter().map(|&j| names[j].clone()).collect();
            provenance = keep.iter().map(|&j| provenance[j].clone()).collect();
            columns = keep.iter().map(|&j| columns[j].clone()).collect();
        }
        Corruption::Add { p_active } => {
            check_probability("p_active", p_active)?;
            // "All" has no meaning for new columns; it adds as many as exist.
            let m = match amount {
                Amount::All => eligible.len(),
                Amount::Count(m) => m,
                Amount::Fraction(_) => amount.resolve(eligible.len())?,
            };
            for i in 0..m {
                names.push(format!("added_{i}"));
                provenance.push("added".to_owned());
                columns.push(
                    (0..n)
                        .map(|_| u8::from(random::open_uniform(rng) < p_active))
                        .collect(),
                );
            }
        }
        Corruption::Noise { p_noise } => {
            check_probability("p_noise", p_noise)?;
            let m = amount.resolve(eligible.len())?;
            for j in pick(rng, m) {
                for v in &mut columns[j] {
                    if random::open_uniform(rng) < p_noise {
                        *v = 1 - *v;
                    }
                }
                provenance[j] = "noisy".to_owned();
            }
        }
        Corruption::Duplicate { n_replica } => {
            let m = amount.resolve(eligible.len())?;
            for j in pick(rng, m) {
                for r in 0..n_replica {
                    let suffix = if n_replica > 1 {
                        format!("_{r}")
                    } else {
                        String::new()
                    };
                    names.push(format!("{}_duplicate{suffix}", table.names[j]));
                    provenance.push(format!("duplicate_{j}"));
                    columns.push(columns[j].clone());
                }
            }
        }
    }
    Ok(ConceptTable::from_columns(names, columns, provenance, n))
}

fn check_probability(name: &str, p: f64) -> Result<(), SynthError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(SynthError::InvalidRequest(format!(
            "{name} must be in [0, 1], found {p}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize, k: usize, rng: &mut Rng) -> ConceptTable {
        let names = (0..k).map(|j| format!("concept_{j}")).collect();
        let values = (0..n * k)
            .map(|_| u8::from(random::open_uniform(rng) < 0.3))
            .collect();
        ConceptTable::new(names, values, n).unwrap()
    }

    #[test]
    fn n_mod_resolution() {
        assert_eq!(Amount::from_n_mod(0.0).unwrap(), Amount::Count(0));
        assert_eq!(Amount::from_n_mod(3.0).unwrap(), Amount::Count(3));
        assert!(Amount::from_n_mod(1.5).is_err());
        // round-half-even: 8 * 0.5625 = 4.5 -> 4; clamp to [1, n-1].
        assert_eq!(Amount::Fraction(0.5625).resolve(8).unwrap(), 4);
        assert_eq!(Amount::Fraction(0.01).resolve(8).unwrap(), 1);
        assert_eq!(Amount::Fraction(0.99).resolve(8).unwrap(), 7);
        assert!(Amount::Count(9).resolve(8).is_err());
    }

    #[test]
    fn drop_removes_and_spares_the_target() {
        let mut rng = random::stream_rng(1, 0);
        let t = table(50, 6, &mut rng);
        for _ in 0..20 {
            let out = corrupt(
                &t,
                Corruption::Drop,
                Amount::Count(5),
                Some("concept_2"),
                &mut rng,
            )
            .unwrap();
            assert_eq!(out.names, vec!["concept_2"]);
            assert_eq!(out.column(0), t.column(2));
        }
    }

    #[test]
    fn duplicate_copies_exactly() {
        let mut rng = random::stream_rng(2, 0);
        let t = table(40, 4, &mut rng);
        let out = corrupt(
            &t,
            Corruption::Duplicate { n_replica: 2 },
            Amount::Count(1),
            Some("concept_0"),
            &mut rng,
        )
        .unwrap();
        assert_eq!(out.n_cols(), 6);
        let source: usize = out.provenance[4]
            .trim_start_matches("duplicate_")
            .parse()
            .unwrap();
        assert_ne!(source, 0);
        assert_eq!(out.column(4), t.column(source));
        assert_eq!(out.column(5), t.column(source));
        assert_eq!(
            &out.values[..],
            &{
                // The original columns are untouched.
                let mut v = Vec::new();
                for i in 0..40 {
                    v.extend_from_slice(&t.values[i * 4..i * 4 + 4]);
                    v.push(t.values[i * 4 + source]);
                    v.push(t.values[i * 4 + source]);
                }
                v
            }[..]
        );
    }

    #[test]
    fn noise_flips_about_the_configured_share() {
        let mut rng = random::stream_rng(3, 0);
        let t = table(20_000, 3, &mut rng);
        let out = corrupt(
            &t,
            Corruption::Noise { p_noise: 0.2 },
            Amount::All,
            Some("concept_1"),
            &mut rng,
        )
        .unwrap();
        assert_eq!(out.column(1), t.column(1));
        for j in [0, 2] {
            let flipped = out
                .column(j)
                .iter()
                .zip(t.column(j))
                .filter(|(a, b)| **a != *b)
                .count();
            let share = flipped as f64 / 20_000.0;
            // Binomial(20000, 0.2): sd of the share = 0.0028.
            assert!((share - 0.2).abs() < 0.012, "column {j}: {share}");
            assert_eq!(out.provenance[j], "noisy");
        }
    }

    #[test]
    fn add_appends_independent_bernoulli_columns() {
        let mut rng = random::stream_rng(4, 0);
        let t = table(20_000, 2, &mut rng);
        let out = corrupt(
            &t,
            Corruption::Add { p_active: 0.5 },
            Amount::Count(3),
            None,
            &mut rng,
        )
        .unwrap();
        assert_eq!(out.n_cols(), 5);
        assert_eq!(out.names[2..], ["added_0", "added_1", "added_2"]);
        let a = out.column(2);
        let b = out.column(3);
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / 20_000.0;
        assert!((mean - 0.5).abs() < 0.015, "{mean}");
        // Independent of each other and of the original concepts.
        let both = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| **x == 1 && **y == 1)
            .count() as f64
            / 20_000.0;
        assert!((both - 0.25).abs() < 0.015, "{both}");
        let with_orig = a
            .iter()
            .zip(t.column(0))
            .filter(|(x, y)| **x == 1 && *y == 1)
            .count() as f64
            / 20_000.0;
        let p0 = t.column(0).iter().map(|&v| f64::from(v)).sum::<f64>() / 20_000.0;
        assert!((with_orig - 0.5 * p0).abs() < 0.015);
    }

    #[test]
    fn bad_requests() {
        let mut rng = random::stream_rng(5, 0);
        let t = table(10, 3, &mut rng);
        assert!(
            corrupt(
                &t,
                Corruption::Drop,
                Amount::Count(3),
                Some("concept_0"),
                &mut rng
            )
            .is_err()
        );
        assert!(
            corrupt(
                &t,
                Corruption::Drop,
                Amount::Count(1),
                Some("nope"),
                &mut rng
            )
            .is_err()
        );
        assert!(
            corrupt(
                &t,
                Corruption::Noise { p_noise: 1.5 },
                Amount::All,
                None,
                &mut rng
            )
            .is_err()
        );
    }
}
