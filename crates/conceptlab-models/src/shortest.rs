//! Serialising `f32` settings as the number they were written as. serde's
//! TOML (and any f64-only format) widens an f32 exactly, so `dropout = 0.1`
//! came back as `0.10000000149011612` in `conceptlab-cli config`. The
//! shortest decimal that reads back as the same f32 is written instead;
//! reading it back gives the same f32 bit for bit.

use serde::Serializer;

/// `#[serde(serialize_with = "crate::shortest::f32")]`.
pub fn f32<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    // Display prints the shortest representation that round-trips.
    let widened: f64 = value.to_string().parse().unwrap_or(f64::from(*value));
    serializer.serialize_f64(widened)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct S {
        #[serde(serialize_with = "super::f32")]
        p: f32,
    }

    #[test]
    fn f32_settings_print_as_written_and_read_back_exactly() {
        for p in [0.1f32, 0.3, 1e-7, 0.0, 1.0 / 3.0] {
            let text = serde_json::to_string(&S { p }).unwrap();
            let back: S = serde_json::from_str(&text).unwrap();
            assert_eq!(back.p.to_bits(), p.to_bits(), "{text}");
        }
        assert_eq!(
            serde_json::to_string(&S { p: 0.1 }).unwrap(),
            r#"{"p":0.1}"#
        );
    }
}
