//! Writing concept values back into obs: after an edit, obs describes the
//! counterfactual cells (the inverse of [`encode_with`](super::encode_with)
//! for the columns an edit sets).

use crate::{Column, Frame, NumVec, Values};

/// Writes `value` into obs column `column` for the edited cells, so obs
/// describes the counterfactual. Returns false when the column's storage
/// cannot hold it (left unchanged).
pub fn set_obs(obs: &mut Frame, column: &str, value: &str, rows: &[usize]) -> bool {
    let Some(col) = obs.columns.get_mut(column) else {
        return false;
    };
    match col {
        Column::Categorical(cat) => {
            let position = match &cat.categories {
                Values::Strings(s) => s.iter().position(|c| c == value),
                Values::Numbers(n) => {
                    let target: Option<f64> = value.parse().ok();
                    n.to_f64().iter().position(|&c| Some(c) == target)
                }
            };
            let Some(code) = position else { return false };
            for &r in rows {
                cat.codes[r] = code as i32;
            }
            true
        }
        Column::Strings(s) => {
            for &r in rows {
                s[r] = value.to_string();
            }
            true
        }
        Column::Numeric(values) => set_numbers(values, value, rows),
        Column::Nullable { values, mask } => {
            let written = match values {
                Values::Strings(s) => {
                    for &r in rows {
                        s[r] = value.to_string();
                    }
                    true
                }
                Values::Numbers(n) => set_numbers(n, value, rows),
            };
            if written {
                for &r in rows {
                    mask[r] = false;
                }
            }
            written
        }
    }
}

/// Writes a number (or, for boolean columns, true/false) into `rows`,
/// keeping the column's dtype where the value fits it.
fn set_numbers(values: &mut NumVec, value: &str, rows: &[usize]) -> bool {
    if let NumVec::Bool(b) = values {
        let v = match value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return false,
        };
        for &r in rows {
            b[r] = v;
        }
        return true;
    }
    let Ok(v) = value.parse::<f64>() else {
        return false;
    };
    let integral = v.fract() == 0.0;
    match values {
        NumVec::F64(x) => rows.iter().for_each(|&r| x[r] = v),
        NumVec::F32(x) => rows.iter().for_each(|&r| x[r] = v as f32),
        NumVec::I64(x) if integral && v.abs() < 9e15 => rows.iter().for_each(|&r| x[r] = v as i64),
        NumVec::I32(x) if integral && v.abs() <= i32::MAX as f64 => {
            rows.iter().for_each(|&r| x[r] = v as i32)
        }
        // Other widths (or a fraction in an integer column): widen to f64.
        other => {
            let mut all = other.to_f64();
            for &r in rows {
                all[r] = v;
            }
            *other = NumVec::F64(all);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Categorical;

    #[test]
    fn obs_columns_of_every_storage_take_the_new_value() {
        let mut obs = Frame::with_index(vec!["a".into(), "b".into(), "c".into()]);
        let columns = [
            (
                "cat",
                Column::Categorical(Categorical::from_labels(&["x", "y", "x"])),
            ),
            (
                "str",
                Column::Strings(vec!["x".into(), "y".into(), "z".into()]),
            ),
            ("int", Column::Numeric(NumVec::I32(vec![1, 2, 3]))),
            ("flag", Column::Numeric(NumVec::Bool(vec![false; 3]))),
            (
                "nstr",
                Column::Nullable {
                    values: Values::Strings(vec!["x".into(), String::new(), "z".into()]),
                    mask: vec![false, true, false],
                },
            ),
            (
                "nint",
                Column::Nullable {
                    values: Values::Numbers(NumVec::I64(vec![1, 0, 3])),
                    mask: vec![false, true, false],
                },
            ),
        ];
        for (name, column) in columns {
            obs.insert(name, column).unwrap();
        }
        let rows = [1];
        assert!(set_obs(&mut obs, "cat", "x", &rows));
        assert!(!set_obs(&mut obs, "cat", "w", &rows), "not a category");
        assert!(set_obs(&mut obs, "str", "w", &rows));
        assert!(set_obs(&mut obs, "int", "7", &rows));
        assert!(set_obs(&mut obs, "flag", "true", &rows));
        assert!(!set_obs(&mut obs, "flag", "maybe", &rows));
        assert!(set_obs(&mut obs, "nstr", "w", &rows));
        assert!(set_obs(&mut obs, "nint", "5", &rows));
        assert!(!set_obs(&mut obs, "missing", "5", &rows));
        let col = |name: &str| obs.columns[name].clone();
        let Column::Categorical(cat) = col("cat") else {
            panic!()
        };
        assert_eq!(cat.label(1).as_deref(), Some("x"));
        assert_eq!(
            col("str"),
            Column::Strings(vec!["x".into(), "w".into(), "z".into()])
        );
        assert_eq!(
            col("int"),
            Column::Numeric(NumVec::I32(vec![1, 7, 3])),
            "dtype kept"
        );
        assert_eq!(
            col("flag"),
            Column::Numeric(NumVec::Bool(vec![false, true, false]))
        );
        assert_eq!(
            col("nstr"),
            Column::Nullable {
                values: Values::Strings(vec!["x".into(), "w".into(), "z".into()]),
                mask: vec![false; 3],
            }
        );
        assert_eq!(
            col("nint"),
            Column::Nullable {
                values: Values::Numbers(NumVec::I64(vec![1, 5, 3])),
                mask: vec![false; 3],
            }
        );
        // A fraction in an integer column widens it rather than truncating.
        assert!(set_obs(&mut obs, "int", "2.5", &rows));
        assert_eq!(
            obs.columns["int"],
            Column::Numeric(NumVec::F64(vec![1.0, 2.5, 3.0]))
        );
    }
}
