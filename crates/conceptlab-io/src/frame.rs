//! Reading anndata data frames (`obs`, `var`, data frames in `uns`) and their
//! columns. Lengths are checked from metadata against the index before any
//! column is read.

use std::collections::HashSet;

use conceptlab_core::{Categorical, Column, Frame, NumVec, Values};
use indexmap::IndexMap;

use crate::error::Result;
use crate::h5::{self, H5File, NodeKind};
use crate::read::join;

pub(crate) const COLUMN_ENCODINGS: &str = "array, string-array, categorical, nullable-integer, \
     nullable-boolean, nullable-string-array";

impl H5File {
    /// The `encoding-type` of a data frame group, which must be `dataframe`.
    fn frame_attrs(&self, key: &str) -> Result<crate::attrs::Attrs> {
        let kind = self.require(key, "a dataframe group")?;
        if kind == NodeKind::Dataset {
            return Err(self.invalid(key, "expected a dataframe group, found a dataset"));
        }
        let attrs = self.attrs(key, kind)?;
        match self.encoding(key, &attrs)?.as_deref() {
            Some("dataframe") => Ok(attrs),
            Some(other) => Err(self.unsupported(key, other, "dataframe")),
            None => Err(self.invalid(
                key,
                "group has no `encoding-type` attribute (expected `dataframe`)",
            )),
        }
    }

    /// The name of a data frame's index column: its `_index` attribute, which
    /// anndata requires (reading a frame without one is a `KeyError` there).
    fn index_name(&self, key: &str, attrs: &crate::attrs::Attrs) -> Result<String> {
        self.attr_string(key, attrs, "_index")?.ok_or_else(|| {
            self.invalid(
                key,
                "data frame has no `_index` attribute naming its index column",
            )
        })
    }

    /// Number of rows of the data frame at `key`, from metadata only.
    pub(crate) fn frame_len(&self, key: &str) -> Result<usize> {
        let attrs = self.frame_attrs(key)?;
        let index = self.index_name(key, &attrs)?;
        self.column_len(&join(key, &index))
    }

    /// Number of values of the column at `key`, from metadata only.
    pub(crate) fn column_len(&self, key: &str) -> Result<usize> {
        let kind = self.require(key, "a column")?;
        let values_key = match kind {
            NodeKind::Dataset => key.to_owned(),
            NodeKind::Group => {
                let attrs = self.attrs(key, kind)?;
                match self.encoding(key, &attrs)?.as_deref() {
                    Some("categorical") => join(key, "codes"),
                    Some("nullable-integer")
                    | Some("nullable-boolean")
                    | Some("nullable-string-array") => join(key, "values"),
                    Some(other) => return Err(self.unsupported(key, other, COLUMN_ENCODINGS)),
                    None => {
                        return Err(self.unsupported(
                            key,
                            "group without encoding-type",
                            COLUMN_ENCODINGS,
                        ));
                    }
                }
            }
        };
        let ds = self.dataset(&values_key)?;
        match self.shape(&values_key, &ds)?.as_slice() {
            [n] => Ok(*n),
            other => Err(self.invalid(
                &values_key,
                format!(
                    "expected a one-dimensional array, found shape {}",
                    crate::bounds::dims(&other.iter().map(|&d| d as u64).collect::<Vec<_>>())
                ),
            )),
        }
    }

    /// Reads an anndata `dataframe` group.
    ///
    /// As in anndata, the columns are exactly those `column-order` lists, in
    /// that order, and the attribute is required; members of the group that
    /// it does not list are not columns (anndata ignores them too).
    pub(crate) fn read_frame(&self, key: &str) -> Result<Frame> {
        let attrs = self.frame_attrs(key)?;
        let index_name = self.index_name(key, &attrs)?;
        let index_key = join(key, &index_name);
        let n = self.column_len(&index_key)?;
        let order = self
            .attr_strings(key, &attrs, "column-order")?
            .ok_or_else(|| {
                self.invalid(
                    key,
                    "data frame has no `column-order` attribute listing its columns",
                )
            })?;
        let mut seen = HashSet::new();
        for name in &order {
            if !seen.insert(name.as_str()) || *name == index_name {
                return Err(self.invalid(
                    key,
                    format!("`column-order` lists `{name}` twice or as the index"),
                ));
            }
            let col_key = join(key, name);
            let len = self.column_len(&col_key)?;
            if len != n {
                return Err(self.invalid(
                    &col_key,
                    format!("column has {len} values but the index has {n}"),
                ));
            }
        }
        let index = match self.read_column(&index_key)? {
            Column::Strings(s) => s,
            Column::Numeric(v) => (0..v.len())
                .filter_map(|i| v.get_f64(i))
                .map(|x| x.to_string())
                .collect(),
            Column::Categorical(c) => (0..c.codes.len())
                .map(|i| {
                    c.label(i).ok_or_else(|| {
                        self.invalid(&index_key, "an index may not hold missing values")
                    })
                })
                .collect::<Result<_>>()?,
            Column::Nullable { .. } => {
                return Err(self.invalid(&index_key, "an index may not hold missing values"));
            }
        };
        let mut frame = Frame {
            index_name,
            index,
            columns: IndexMap::with_capacity(order.len()),
        };
        for name in order {
            let column = self.read_column(&join(key, &name))?;
            frame.columns.insert(name, column);
        }
        Ok(frame)
    }

    /// Reads one data-frame column (or a categorical / nullable array elsewhere).
    pub(crate) fn read_column(&self, key: &str) -> Result<Column> {
        let kind = self.require(key, "a column")?;
        let attrs = self.attrs(key, kind)?;
        let enc = self.encoding(key, &attrs)?;
        match kind {
            NodeKind::Dataset => match enc.as_deref() {
                None | Some("array") | Some("string-array") => {
                    let ds = self.dataset(key)?;
                    let dtype = self.h5_dtype(key, &ds)?;
                    if h5::is_string_dtype(&dtype) {
                        Ok(Column::Strings(self.read_strings(key, &ds)?))
                    } else if h5::numeric_dtype(&dtype).is_some() {
                        Ok(Column::Numeric(self.read_numeric(key, &ds)?))
                    } else {
                        Err(self.unsupported(key, &format!("array of {dtype}"), COLUMN_ENCODINGS))
                    }
                }
                Some(other) => Err(self.unsupported(key, other, COLUMN_ENCODINGS)),
            },
            NodeKind::Group => match enc.as_deref() {
                Some("categorical") => self.read_categorical(key, &attrs).map(Column::Categorical),
                Some("nullable-integer")
                | Some("nullable-boolean")
                | Some("nullable-string-array") => {
                    let (values_key, mask_key) = (join(key, "values"), join(key, "mask"));
                    let values_len = self.column_len(&values_key)?;
                    // anndata reads `mask` unconditionally.
                    self.require(&mask_key, "the missing-value mask of a nullable array")?;
                    if self.column_len(&mask_key)? != values_len {
                        return Err(self.invalid(key, "`mask` and `values` differ in length"));
                    }
                    let values = self.read_values(&values_key)?;
                    let mask = match self.read_numeric(&mask_key, &self.dataset(&mask_key)?)? {
                        NumVec::Bool(m) => m,
                        other => other.to_f64().into_iter().map(|v| v != 0.0).collect(),
                    };
                    Ok(Column::Nullable { values, mask })
                }
                Some(other) => Err(self.unsupported(key, other, COLUMN_ENCODINGS)),
                None => Err(self.unsupported(key, "group without encoding-type", COLUMN_ENCODINGS)),
            },
        }
    }

    fn read_categorical(&self, key: &str, attrs: &crate::attrs::Attrs) -> Result<Categorical> {
        // Required, as in anndata (`bool(attrs["ordered"])`).
        let ordered = self
            .attr_bool(key, attrs, "ordered")?
            .ok_or_else(|| self.invalid(key, "categorical has no `ordered` attribute"))?;
        let codes_key = join(key, "codes");
        let codes_ds = self.dataset(&codes_key)?;
        if !self
            .numeric_dtype(&codes_key, &codes_ds)?
            .is_some_and(|d| d.is_integer())
        {
            return Err(self.invalid(&codes_key, "categorical codes must be integers"));
        }
        let codes = self.read_numeric(&codes_key, &codes_ds)?;
        let categories = self.read_values(&join(key, "categories"))?;
        check_unique(self, &join(key, "categories"), &categories)?;
        // Codes outside i32 cannot index any category list this reader holds;
        // they saturate here and `Categorical::new` reports them.
        let codes = codes.to_f64().into_iter().map(|c| c as i32).collect();
        Categorical::new(codes, categories, ordered).map_err(|e| self.invalid(key, e.to_string()))
    }

    /// Reads a one-dimensional dataset of strings or numbers.
    pub(crate) fn read_values(&self, key: &str) -> Result<Values> {
        let ds = self.dataset(key)?;
        if h5::is_string_dtype(&self.h5_dtype(key, &ds)?) {
            Ok(Values::Strings(self.read_strings(key, &ds)?))
        } else {
            Ok(Values::Numbers(self.read_numeric(key, &ds)?))
        }
    }
}

/// pandas refuses categories that repeat a value ("Categorical categories
/// must be unique"), so anndata cannot read such a column; it is refused here
/// rather than passed on to be written in a form anndata refuses.
pub(crate) fn check_unique(h5: &H5File, key: &str, categories: &Values) -> Result<()> {
    if let Some(label) = first_duplicate(categories) {
        return Err(h5.invalid(
            key,
            format!("categories must be unique, but `{label}` appears more than once"),
        ));
    }
    Ok(())
}

/// The first category that repeats an earlier one, if any.
pub(crate) fn first_duplicate(categories: &Values) -> Option<String> {
    let mut seen = HashSet::with_capacity(categories.len());
    (0..categories.len())
        .filter_map(|i| categories.label(i))
        .find(|label| !seen.insert(label.clone()))
}
