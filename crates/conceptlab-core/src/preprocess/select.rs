//! Cell selection by an obs value, what `--where column=value` means.

use super::Result;
use super::obs_view::{ObsView, obs_column, parse_bool, same_category, view};
use crate::{CoreError, Frame};

/// Most distinct values an error message lists.
const LISTED: usize = 30;

/// A mask over cells: `true` where obs column `column` equals `value`.
/// Categorical and string columns compare category names (`3` also matches
/// a category `3.0`) and reject a value that is not one of them, listing the
/// valid ones; boolean columns take `true/false/1/0`; numeric columns take a
/// number and may match no cell. Missing entries never match.
pub fn select_rows(obs: &Frame, column: &str, value: &str) -> Result<Vec<bool>> {
    let invalid_value = |reason: &str| CoreError::InvalidConcept {
        column: column.to_owned(),
        reason: format!("cannot select `{value}`: {reason}"),
    };
    match view(obs_column(obs, column)?) {
        ObsView::Categories { categories, codes } => {
            let hits: Vec<usize> = (0..categories.len())
                .filter(|&i| same_category(&categories[i], value))
                .collect();
            if hits.is_empty() {
                return Err(CoreError::UnknownCategory {
                    column: column.to_owned(),
                    value: value.to_owned(),
                    valid: categories.into_iter().take(LISTED).collect(),
                });
            }
            Ok(codes
                .iter()
                .map(|c| c.is_some_and(|c| hits.contains(&c)))
                .collect())
        }
        ObsView::Bool(v) => {
            let want = parse_bool(value).ok_or_else(|| {
                invalid_value("the column is boolean; expected true, false, 1 or 0")
            })?;
            Ok(v.iter().map(|b| *b == Some(want)).collect())
        }
        ObsView::Numbers(v) => {
            let want: f64 = value
                .trim()
                .parse()
                .map_err(|_| invalid_value("the column is numeric; expected a number"))?;
            Ok(v.iter().map(|x| *x == Some(want)).collect())
        }
    }
}
