//! `moa`: the decomposition of a perturbation's effect, end to end on the
//! generator's mediation option (the recovery itself is tested in
//! conceptlab-models' moa tests; here the command's table, JSON and errors).

mod common;

use std::path::Path;

use common::{assert_bad_input, assert_ok, p, run, stdout};

const SYNTH: &str = "n_obs = 400\nn_vars = 60\nn_concepts = 2\nbaseline_lower = 20.0\n\
                     baseline_upper = 60.0\n\n[benchmark]\nn_hold_out = 0\n\n[mediation]\n\
                     shifts = [1.0, 0.6, 0.0]\n";
const FIT: &str = "[preprocess]\nn_pcs = 30\n[model.sccbgm]\nhidden_dim = 16\nlatent_dim = 8\n\
                   n_unknown = 8\ndropout = 0.0\n[train]\nlr = 0.003\nbatch_size = 128\n\
                   max_epochs = 5\n";

/// Mediation data and an scCBGM (or `model_type`) fitted on it.
fn setup(dir: &Path, model_type: &str) -> (String, String) {
    let (synth, fit) = (dir.join("med.toml"), dir.join("fit.toml"));
    std::fs::write(&synth, SYNTH).unwrap();
    std::fs::write(&fit, FIT).unwrap();
    let (data, model) = (dir.join("med.h5ad"), dir.join(model_type));
    assert_ok(&run(&["synth", "--preset", p(&synth), "-o", p(&data)]));
    assert_ok(&run(&[
        "--config",
        p(&fit),
        "fit",
        p(&data),
        "--model-type",
        model_type,
        "--concepts",
        "stim",
        "--soft",
        "pathway_0,pathway_1,pathway_2",
        "-o",
        p(&model),
    ]));
    (p(&data).to_string(), p(&model).to_string())
}

#[test]
fn table_and_json_report_shares_that_sum_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = setup(dir.path(), "sccbgm");
    let base = [
        "moa",
        data.as_str(),
        "--model",
        model.as_str(),
        "--perturb",
        "stim=stim",
        "--pathways",
        "pathway_0,pathway_1,pathway_2",
        "--where",
        "stim=ctrl",
    ];
    let o = run(&base);
    assert_ok(&o);
    let table = stdout(&o);
    for row in [
        "direct",
        "pathway_0",
        "pathway_2",
        "interaction",
        "top genes",
    ] {
        assert!(table.contains(row), "{table}");
    }
    let mut args = base.to_vec();
    args.extend(["--json", "--top", "3"]);
    let o = run(&args);
    assert_ok(&o);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let pathways = json["pathways"].as_array().unwrap();
    assert_eq!(pathways.len(), 3);
    let sum = json["direct_share"].as_f64().unwrap()
        + json["interaction_share"].as_f64().unwrap()
        + pathways
            .iter()
            .map(|p| p["share"].as_f64().unwrap())
            .sum::<f64>();
    assert!((sum - 1.0).abs() < 1e-6, "{sum}");
    assert_eq!(json["top_genes"].as_array().unwrap().len(), 3);
    assert_eq!(json["genes"].as_array().unwrap().len(), 60);
    // Given levels replace the reference cells.
    let mut given = base.to_vec();
    given.extend(["--levels", "1.0,0.5,0.0", "--json"]);
    let o = run(&given);
    assert_ok(&o);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["n_reference"], 0);

    let bad = |extra: &[&str], fragments: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        assert_bad_input(&run(&args), fragments);
    };
    bad(&["--levels", "1.0"], &["levels given"]);
    bad(
        &["--reference", "cell_type=celltype_0", "--levels", "1,1,1"],
        &["--reference"],
    );
    let mut wrong = base.to_vec();
    wrong[6] = "nope=1";
    assert_bad_input(&run(&wrong), &["nope"]);

    // The plot: one bar per part, well-formed SVG, claimed like any output.
    let plot = dir.path().join("shares.svg");
    let mut plotted = base.to_vec();
    plotted.extend(["--plot", p(&plot)]);
    assert_ok(&run(&plotted));
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<rect").count(), 1 + 5, "{svg}");
    for part in [
        "direct",
        "pathway_0",
        "pathway_1",
        "pathway_2",
        "interaction",
    ] {
        assert!(svg.contains(&format!(">{part}</text>")), "{part}: {svg}");
    }
    assert_bad_input(&run(&plotted), &["already exists"]);
    let mut onto_data = base.to_vec();
    onto_data.extend(["--plot", data.as_str(), "--force"]);
    assert_bad_input(&run(&onto_data), &["input"]);
}

#[test]
fn a_model_without_a_bottleneck_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = setup(dir.path(), "mean-shift");
    let o = run(&[
        "moa",
        &data,
        "--model",
        &model,
        "--perturb",
        "stim=stim",
        "--pathways",
        "pathway_0",
    ]);
    assert_bad_input(&o, &["concept-bottleneck"]);
}

/// docs/pathways.md's worked example, and what the page says of it: the
/// identity programs carry a real part of "B cells as monocytes", the
/// interferon control carries none.
#[test]
fn the_worked_example_on_pbmc68k_holds() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (scored, model) = (dir.path().join("scored.h5ad"), dir.path().join("model"));
    assert_ok(&run(&[
        "-q",
        "concepts",
        p(&root.join("data/pbmc68k_reduced.h5ad")),
        "--gene-sets",
        p(&root.join("data/gene_sets/pbmc_example.gmt")),
        "--raw",
        "--prefix",
        "gs_",
        "-o",
        p(&scored),
    ]));
    let pathways = "gs_MONOCYTE_IDENTITY,gs_B_CELL_IDENTITY,gs_INTERFERON_RESPONSE";
    assert_ok(&run(&[
        "-q",
        "--seed",
        "0",
        "--override",
        "model.sccbgm.orthogonality_hp=5",
        "--override",
        "preprocess.normalize=never",
        "fit",
        p(&scored),
        "--concepts",
        "bulk_labels",
        "--soft",
        pathways,
        "-o",
        p(&model),
    ]));
    let o = run(&[
        "moa",
        p(&scored),
        "--model",
        p(&model),
        "--perturb",
        "bulk_labels=CD14+ Monocyte",
        "--where",
        "bulk_labels=CD19+ B",
        "--pathways",
        pathways,
        "--json",
    ]);
    assert_ok(&o);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let share = |name: &str| {
        json["pathways"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["share"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(json["n_cells"], 95);
    assert!(share("gs_MONOCYTE_IDENTITY") > 0.1, "{json}");
    assert!(share("gs_B_CELL_IDENTITY") > 0.1, "{json}");
    assert!(share("gs_INTERFERON_RESPONSE").abs() < 0.05, "{json}");
    // Assumption 4's linear check: the unknown code explains little of
    // each pathway under the raised orthogonality weight.
    for p in json["pathways"].as_array().unwrap() {
        let r2 = p["in_unknown_adjusted_r2"].as_f64().unwrap();
        assert!(r2 < conceptlab_models::moa::WARN_R2, "{p}");
    }
    assert!(json["direct_share"].as_f64().unwrap() > 0.1, "{json}");
}
