//! Typed access to HDF5 attributes, where an attribute that is present but
//! unreadable or of the wrong type is an error rather than an absent one.
//!
//! Anndata reads `column-order`, `_index`, `ordered` and `shape` without
//! defaults (a missing one is a `KeyError`); reading them as "absent" would
//! turn one damaged byte into a data frame with no columns.

use std::collections::{HashMap, HashSet};

use hdf5_pure::AttrValue;

use crate::error::Result;
use crate::h5::H5File;

/// The attributes of one object.
#[derive(Debug, Default)]
pub(crate) struct Attrs {
    values: HashMap<String, AttrValue>,
    /// Present on disk but of a type `hdf5-pure` does not decode.
    unreadable: HashSet<String>,
}

impl Attrs {
    /// `values` as decoded and the `names` of every attribute on disk.
    pub(crate) fn new(
        values: HashMap<String, AttrValue>,
        names: impl IntoIterator<Item = String>,
    ) -> Self {
        let unreadable = names
            .into_iter()
            .filter(|n| !values.contains_key(n))
            .collect();
        Self { values, unreadable }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.unreadable.contains(name)
    }
}

/// What a wrongly typed attribute holds, short enough for a message.
fn describe(value: &AttrValue) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

impl H5File {
    /// The attribute `name`, `None` when absent, an error when present but
    /// not decodable.
    fn attr<'a>(&self, key: &str, attrs: &'a Attrs, name: &str) -> Result<Option<&'a AttrValue>> {
        if attrs.unreadable.contains(name) {
            return Err(self.invalid(
                key,
                format!("attribute `{name}` is stored with a type that cannot be read"),
            ));
        }
        Ok(attrs.values.get(name))
    }

    fn wrong_type(
        &self,
        key: &str,
        name: &str,
        expected: &str,
        value: &AttrValue,
    ) -> crate::IoError {
        self.invalid(
            key,
            format!(
                "attribute `{name}` should be {expected}, found {}",
                describe(value)
            ),
        )
    }

    /// A string attribute, whichever string encoding it uses.
    pub(crate) fn attr_string(
        &self,
        key: &str,
        attrs: &Attrs,
        name: &str,
    ) -> Result<Option<String>> {
        let Some(value) = self.attr(key, attrs, name)? else {
            return Ok(None);
        };
        match value {
            AttrValue::VarLenString(s) | AttrValue::String(s) | AttrValue::AsciiString(s) => {
                Ok(Some(s.clone()))
            }
            other => match other.as_str() {
                Some(s) => Ok(Some(s.to_owned())),
                None => Err(self.wrong_type(key, name, "a string", other)),
            },
        }
    }

    /// A list-of-strings attribute. h5py writes an empty list as an empty
    /// float array, and a one-element list may arrive as a plain string.
    pub(crate) fn attr_strings(
        &self,
        key: &str,
        attrs: &Attrs,
        name: &str,
    ) -> Result<Option<Vec<String>>> {
        let Some(value) = self.attr(key, attrs, name)? else {
            return Ok(None);
        };
        if let Some(s) = value.as_strings() {
            return Ok(Some(s.to_vec()));
        }
        match value {
            AttrValue::VarLenStringArray(v) => Ok(Some(v.clone())),
            // An empty list has no element type: h5py writes float64,
            // anndata-rs int64; anndata reads any empty array as [].
            AttrValue::F64Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::F32Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::I64Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::I32Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::I16Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::I8Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::U64Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::U32Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::U16Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            AttrValue::U8Array(v) if v.is_empty() => Ok(Some(Vec::new())),
            other => match other.as_str() {
                Some(s) => Ok(Some(vec![s.to_owned()])),
                None => Err(self.wrong_type(key, name, "a list of strings", other)),
            },
        }
    }

    /// An integer or list-of-integers attribute.
    pub(crate) fn attr_integers(
        &self,
        key: &str,
        attrs: &Attrs,
        name: &str,
    ) -> Result<Option<Vec<i64>>> {
        let Some(value) = self.attr(key, attrs, name)? else {
            return Ok(None);
        };
        match value.to_i64s().or_else(|| value.as_i64().map(|v| vec![v])) {
            Some(v) => Ok(Some(v)),
            None => Err(self.wrong_type(key, name, "a list of integers", value)),
        }
    }

    /// A boolean attribute (h5py writes numpy booleans as integers).
    pub(crate) fn attr_bool(&self, key: &str, attrs: &Attrs, name: &str) -> Result<Option<bool>> {
        let Some(value) = self.attr(key, attrs, name)? else {
            return Ok(None);
        };
        match value.as_i64() {
            Some(v) => Ok(Some(v != 0)),
            None => Err(self.wrong_type(key, name, "a boolean", value)),
        }
    }

    /// The anndata `encoding-type` of an element, if it declares one.
    pub(crate) fn encoding(&self, key: &str, attrs: &Attrs) -> Result<Option<String>> {
        self.attr_string(key, attrs, "encoding-type")
    }
}
