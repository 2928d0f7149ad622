//! What anndata refuses to read, refused before anything is written: a
//! matrix that must be two-dimensional (X, layers, obsp, varp, raw/X) with
//! more or fewer axes ("X needs to be 2-dimensional"), and a categorical
//! whose categories repeat a value ("Categorical categories must be unique").
//!
//! The in-memory types allow both (a dense array has any shape; categories
//! are a plain list), so the writer checks instead of writing a file that
//! Python cannot open.

use conceptlab_core::{CellData, Column, Frame, Matrix, UnsValue};
use indexmap::IndexMap;

use crate::error::{IoError, Result};
use crate::frame::first_duplicate;
use crate::read::join;

pub(crate) fn check(data: &CellData, path: &str) -> Result<()> {
    let refuse = |key: &str, reason: String| IoError::Unwritable {
        path: path.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let mut matrices: Vec<(String, &Matrix)> = vec![("X".to_owned(), &data.x)];
    for (group, map) in [
        ("layers", &data.layers),
        ("obsp", &data.obsp),
        ("varp", &data.varp),
    ] {
        matrices.extend(map.iter().map(|(k, m)| (join(group, k), m)));
    }
    if let Some(raw) = &data.raw {
        matrices.push(("raw/X".to_owned(), &raw.x));
    }
    for (key, m) in matrices {
        if let Matrix::Dense(d) = m
            && d.shape.len() != 2
        {
            return Err(refuse(
                &key,
                format!(
                    "anndata needs a two-dimensional matrix here, not {} dimensions",
                    d.shape.len()
                ),
            ));
        }
    }
    let mut frames = vec![("obs".to_owned(), &data.obs), ("var".to_owned(), &data.var)];
    if let Some(raw) = &data.raw {
        frames.push(("raw/var".to_owned(), &raw.var));
    }
    for (key, frame) in frames {
        check_frame(&key, frame).map_err(|(k, r)| refuse(&k, r))?;
    }
    check_uns("uns", &data.uns).map_err(|(k, r)| refuse(&k, r))
}

type Refusal = (String, String);

fn check_column(key: &str, column: &Column) -> Result<(), Refusal> {
    if let Column::Categorical(c) = column
        && let Some(label) = first_duplicate(&c.categories)
    {
        return Err((
            key.to_owned(),
            format!("categories must be unique, but `{label}` appears more than once"),
        ));
    }
    Ok(())
}

fn check_frame(key: &str, frame: &Frame) -> Result<(), Refusal> {
    frame
        .columns
        .iter()
        .try_for_each(|(name, column)| check_column(&join(key, name), column))
}

fn check_uns(key: &str, map: &IndexMap<String, UnsValue>) -> Result<(), Refusal> {
    for (name, value) in map {
        let key = join(key, name);
        match value {
            UnsValue::Mapping(m) => check_uns(&key, m)?,
            UnsValue::Frame(f) => check_frame(&key, f)?,
            UnsValue::Column(c) => check_column(&key, c)?,
            _ => {}
        }
    }
    Ok(())
}
