use indexmap::IndexMap;

use super::numvec::NumVec;
use crate::CoreError;

/// A homogeneous list of values: strings or numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Strings(Vec<String>),
    Numbers(NumVec),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Strings(s) => s.len(),
            Values::Numbers(n) => n.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` rendered as text (numbers in their shortest form).
    pub fn label(&self, i: usize) -> Option<String> {
        match self {
            Values::Strings(s) => s.get(i).cloned(),
            Values::Numbers(n) => n.get_f64(i).map(|x| x.to_string()),
        }
    }

    fn gather(&self, indices: &[usize]) -> Result<Self, CoreError> {
        Ok(match self {
            Values::Strings(s) => Values::Strings(gather_vec(s, indices)?),
            Values::Numbers(n) => Values::Numbers(n.gather(indices)?),
        })
    }
}

/// A pandas categorical: integer codes into a list of categories.
#[derive(Debug, Clone, PartialEq)]
pub struct Categorical {
    /// One code per row; `-1` marks a missing value, as in pandas.
    pub codes: Vec<i32>,
    pub categories: Values,
    pub ordered: bool,
}

impl Categorical {
    /// Builds a categorical, checking that every code is `-1` or a valid category.
    pub fn new(codes: Vec<i32>, categories: Values, ordered: bool) -> Result<Self, CoreError> {
        let n = categories.len();
        if let Some(&bad) = codes.iter().find(|&&c| c < -1 || c >= n as i32) {
            return Err(CoreError::IndexOutOfBounds {
                what: "categories",
                index: bad.max(0) as usize,
                len: n,
            });
        }
        Ok(Self {
            codes,
            categories,
            ordered,
        })
    }

    /// Builds a categorical from labels, with categories in sorted order (as
    /// pandas does for `astype("category")`).
    pub fn from_labels<S: AsRef<str>>(labels: &[S]) -> Self {
        let mut categories: Vec<String> = labels.iter().map(|s| s.as_ref().to_owned()).collect();
        categories.sort();
        categories.dedup();
        let codes = labels
            .iter()
            .map(|s| {
                categories
                    .binary_search_by(|c| c.as_str().cmp(s.as_ref()))
                    .map_or(-1, |i| i as i32)
            })
            .collect();
        Self {
            codes,
            categories: Values::Strings(categories),
            ordered: false,
        }
    }

    /// The label of row `i`, or `None` where the value is missing.
    pub fn label(&self, i: usize) -> Option<String> {
        let code = *self.codes.get(i)?;
        if code < 0 {
            None
        } else {
            self.categories.label(code as usize)
        }
    }

    /// Number of rows carrying each category, in category order.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.categories.len()];
        for &c in &self.codes {
            if c >= 0 {
                counts[c as usize] += 1;
            }
        }
        counts
    }
}

/// One column of an obs/var table.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// A numeric or boolean numpy column (no missing values).
    Numeric(NumVec),
    /// A plain string column (`string-array`).
    Strings(Vec<String>),
    Categorical(Categorical),
    /// pandas' nullable extension arrays (`Int64`, `boolean`, `string`, ...):
    /// `mask[i]` is `true` where the value is missing.
    Nullable {
        values: Values,
        mask: Vec<bool>,
    },
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Strings(v) => v.len(),
            Column::Categorical(c) => c.codes.len(),
            Column::Nullable { mask, .. } => mask.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A short description of the column type, e.g. `float32`,
    /// `categorical[10]`, `nullable int64`.
    pub fn describe(&self) -> String {
        match self {
            Column::Numeric(v) => v.dtype().name().to_owned(),
            Column::Strings(_) => "string".to_owned(),
            Column::Categorical(c) => {
                let ordered = if c.ordered { "ordered " } else { "" };
                format!("{ordered}categorical[{}]", c.categories.len())
            }
            Column::Nullable { values, .. } => match values {
                Values::Strings(_) => "nullable string".to_owned(),
                Values::Numbers(n) => format!("nullable {}", n.dtype().name()),
            },
        }
    }

    /// Rows `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Self, CoreError> {
        Ok(match self {
            Column::Numeric(v) => Column::Numeric(v.gather(indices)?),
            Column::Strings(v) => Column::Strings(gather_vec(v, indices)?),
            Column::Categorical(c) => Column::Categorical(Categorical {
                codes: gather_vec(&c.codes, indices)?,
                categories: c.categories.clone(),
                ordered: c.ordered,
            }),
            Column::Nullable { values, mask } => Column::Nullable {
                values: values.gather(indices)?,
                mask: gather_vec(mask, indices)?,
            },
        })
    }
}

/// A data frame as anndata stores `obs` and `var`: a string index plus named
/// columns in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The name the index is written under (anndata's `_index` attribute).
    pub index_name: String,
    pub index: Vec<String>,
    pub columns: IndexMap<String, Column>,
}

impl Frame {
    /// The conventional name anndata gives an unnamed index.
    pub const DEFAULT_INDEX_NAME: &'static str = "_index";

    /// A frame with the given index and no columns.
    pub fn with_index(index: Vec<String>) -> Self {
        Self {
            index_name: Self::DEFAULT_INDEX_NAME.to_owned(),
            index,
            columns: IndexMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds or replaces a column, checking its length against the index.
    pub fn insert(&mut self, name: impl Into<String>, column: Column) -> Result<(), CoreError> {
        let name = name.into();
        if column.len() != self.len() {
            return Err(CoreError::ShapeMismatch {
                what: format!("length of column `{name}`"),
                expected: self.len().to_string(),
                found: column.len().to_string(),
            });
        }
        self.columns.insert(name, column);
        Ok(())
    }

    /// Checks that every column has one value per index entry.
    pub fn validate(&self, what: &str) -> Result<(), CoreError> {
        for (name, col) in &self.columns {
            if col.len() != self.len() {
                return Err(CoreError::ShapeMismatch {
                    what: format!("{what} column `{name}`"),
                    expected: self.len().to_string(),
                    found: col.len().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Rows `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Self, CoreError> {
        let mut columns = IndexMap::with_capacity(self.columns.len());
        for (name, col) in &self.columns {
            columns.insert(name.clone(), col.select(indices)?);
        }
        Ok(Self {
            index_name: self.index_name.clone(),
            index: gather_vec(&self.index, indices)?,
            columns,
        })
    }
}

fn gather_vec<T: Clone>(v: &[T], indices: &[usize]) -> Result<Vec<T>, CoreError> {
    indices
        .iter()
        .map(|&i| {
            v.get(i).cloned().ok_or(CoreError::IndexOutOfBounds {
                what: "rows",
                index: i,
                len: v.len(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categorical_from_labels_sorts_and_counts() {
        let c = Categorical::from_labels(&["T", "B", "T", "NK"]);
        assert_eq!(
            c.categories,
            Values::Strings(vec!["B".into(), "NK".into(), "T".into()])
        );
        assert_eq!(c.codes, vec![2, 0, 2, 1]);
        assert_eq!(c.counts(), vec![1, 1, 2]);
        assert_eq!(c.label(3).as_deref(), Some("NK"));
    }

    #[test]
    fn categorical_rejects_bad_codes() {
        let cats = Values::Strings(vec!["a".into()]);
        assert!(Categorical::new(vec![0, -1], cats.clone(), false).is_ok());
        assert!(Categorical::new(vec![1], cats.clone(), false).is_err());
        assert!(Categorical::new(vec![-2], cats, false).is_err());
    }

    #[test]
    fn frame_select_and_length_checks() {
        let mut f = Frame::with_index(vec!["a".into(), "b".into(), "c".into()]);
        f.insert("n", Column::Numeric(NumVec::I64(vec![1, 2, 3])))
            .unwrap();
        assert!(
            f.insert("short", Column::Strings(vec!["x".into()]))
                .is_err()
        );
        let s = f.select(&[2, 0]).unwrap();
        assert_eq!(s.index, vec!["c".to_string(), "a".to_string()]);
        assert_eq!(s.columns["n"], Column::Numeric(NumVec::I64(vec![3, 1])));
    }
}
