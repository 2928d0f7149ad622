//! The main job on built-in synthetic data (synthetic_1, the default demo):
//! scCBGM's edits of a never-seen (cell type, concept) combination against
//! their exact counterfactual twins.

use std::process::Command;

#[test]
fn demo_edits_an_unseen_combination_better_than_copying() {
    let out = Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"))
        .args(["-q", "--seed", "0", "demo", "--json"])
        .env_remove("CONCEPTLAB_SEED")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let get = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {v}"));
    // Zero-shot: the combination never appears in training.
    assert_eq!(v["held_out_in_training"], 0, "{v}");
    assert!(get("n_edited") > 100.0, "{v}");
    // The edit is several times closer to the truth than leaving cells as
    // they are, and an order of magnitude closer than the decoder's output
    // (what the reference returns).
    let edited = get("edited_residual_mse");
    assert!(edited < get("unedited_mse") / 3.0, "{v}");
    assert!(edited < get("edited_mse") / 10.0, "{v}");
    // No method that moves every cell alike beats the true mean effect.
    assert!(get("oracle_shift_mse") < edited, "{v}");
    // The concept head recognises concepts in cells it never saw.
    assert!(get("concept_auroc") > 0.9, "{v}");
    assert!(get("target_auroc") > 0.9, "{v}");
}
