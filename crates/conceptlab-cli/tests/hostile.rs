//! Hostile input through the command line: absurd sizes and counts,
//! outputs that are inputs or devices, concurrent writers, killed writers,
//! stray environment variables, ignored arguments. Every refusal is one
//! `error:` line, exit 2, no output, inputs byte-identical
//! (docs/reliability.md lists the classes).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{assert_bad_input, assert_ok, p, pbmc, run, stderr, stdout};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A small synthetic data set (600 cells x 200 genes) in `dir`.
fn small_synth(dir: &Path) -> PathBuf {
    let out = dir.join("cells.h5ad");
    assert_ok(&run(&[
        "-q",
        "synth",
        "--cells",
        "600",
        "--genes",
        "200",
        "--hold-out",
        "1",
        "-o",
        p(&out),
    ]));
    out
}

/// A one-epoch copy model: enough to read from.
fn copy_model(data: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("model");
    assert_ok(&run(&[
        "-q",
        "fit",
        p(data),
        "--model-type",
        "copy",
        "--concepts",
        "concept_0",
        "-o",
        p(&out),
    ]));
    out
}

#[test]
fn absurd_sizes_are_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.h5ad");
    for args in [
        vec!["synth", "--cells", "1000000000000", "-o", p(&out)],
        vec!["synth", "--cells", "18446744073709551615", "-o", p(&out)],
        vec!["synth", "--genes", "1000000000000", "-o", p(&out)],
        vec!["synth", "--concepts", "4000000000", "-o", p(&out)],
    ] {
        let o = run(&args);
        assert_bad_input(&o, &["must be between"]);
    }
    // Within every bound but not within any machine's memory.
    let o = run(&[
        "synth",
        "--cells",
        "100000000",
        "--genes",
        "1000000",
        "-o",
        p(&out),
    ]);
    assert_bad_input(&o, &["memory"]);
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[test]
fn counts_are_bounded_with_the_key_named() {
    assert_bad_input(&run(&["--threads", "100000", "config"]), &["threads"]);
    for (key, fragment) in [
        ("train.max_epochs=10000000000000000000", "train.max_epochs"),
        ("train.batch_size=100000000000", "batch_size"),
        ("model.sccbgm.hidden_dim=100000000", "hidden_dim"),
        ("model.cinemaot.max_iter=0", "model.cinemaot.max_iter"),
        (
            "model.cinemaot.n_components=100000",
            "model.cinemaot.n_components",
        ),
        ("flow.network.emb_dim=0", "emb_dim"),
        ("flow.train.max_epochs=0", "flow.train"),
        ("preprocess.n_pcs=0", "n_pcs"),
        ("preprocess.target_sum=-1", "target_sum"),
    ] {
        assert_bad_input(&run(&["--override", key, "config"]), &[fragment]);
    }
}

#[test]
fn flow_arguments_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    // The demo refuses at once instead of after generating and training.
    for (args, fragment) in [
        (vec!["demo", "--flow", "--steps", "0"], "steps"),
        (
            vec!["demo", "--flow", "--steps", "10000000000000000000"],
            "steps",
        ),
        (
            vec!["demo", "--flow", "--rtol", "nan", "--solver", "dopri5"],
            "rtol",
        ),
    ] {
        assert_bad_input(&run(&args), &[fragment]);
    }
    let data = small_synth(dir.path());
    let model = copy_model(&data, dir.path());
    let out = dir.path().join("edited.h5ad");
    let edit = |extra: &[&str]| {
        let mut args = vec![
            "edit",
            p(&data),
            "--model",
            p(&model),
            "--set",
            "concept_0=true",
            "-o",
            p(&out),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // Arguments that would be ignored are refused, naming why.
    assert_bad_input(&edit(&["--steps", "20"]), &["--steps", "--generator fm"]);
    assert_bad_input(&edit(&["--mode", "decode"]), &["--mode", "--generator fm"]);
    assert_bad_input(
        &edit(&["--set", "concept_0=false"]),
        &["concept_0", "more than once"],
    );
    assert!(!out.exists());
}

#[test]
fn outputs_are_never_inputs_devices_or_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_synth(dir.path());
    let model = copy_model(&data, dir.path());
    let data_before = std::fs::read(&data).unwrap();
    let weights = model.join("weights.safetensors");
    let weights_before = std::fs::read(&weights).unwrap();

    // Into the model being read, with --force.
    let o = run(&[
        "edit",
        p(&data),
        "--model",
        p(&model),
        "--set",
        "concept_0=true",
        "-o",
        p(&weights),
        "--force",
    ]);
    assert_bad_input(&o, &["input directory"]);
    // Onto a device node, with --force.
    #[cfg(unix)]
    {
        let o = run(&["convert", p(&data), "-o", "/dev/null", "--force"]);
        assert_bad_input(&o, &["/dev/null", "character device"]);
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    // A model directory that holds the data it is trained on.
    let home = dir.path().join("project");
    std::fs::create_dir(&home).unwrap();
    let inside = home.join("cells.h5ad");
    std::fs::copy(&data, &inside).unwrap();
    let o = run(&[
        "fit",
        p(&inside),
        "--model-type",
        "copy",
        "--concepts",
        "concept_0",
        "-o",
        p(&home),
        "--force",
    ]);
    assert_bad_input(&o, &["cells.h5ad"]);
    // A user's own directory that happens to hold a history.csv.
    let own = dir.path().join("mine");
    std::fs::create_dir(&own).unwrap();
    std::fs::write(own.join("history.csv"), "my,own\n").unwrap();
    for force in [false, true] {
        let mut args = vec![
            "fit",
            p(&data),
            "--model-type",
            "copy",
            "--concepts",
            "concept_0",
            "-o",
            p(&own),
        ];
        if force {
            args.push("--force");
        }
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    }
    assert_eq!(
        std::fs::read_to_string(own.join("history.csv")).unwrap(),
        "my,own\n"
    );
    // The two outputs of one synth must be two files.
    let twice = dir.path().join("twice.h5ad");
    let o = run(&[
        "synth",
        "--cells",
        "600",
        "--hold-out",
        "1",
        "-o",
        p(&twice),
        "--counterfactuals",
        p(&twice),
    ]);
    assert_bad_input(&o, &["--counterfactuals"]);
    assert!(!twice.exists());

    assert_eq!(std::fs::read(&data).unwrap(), data_before);
    assert_eq!(std::fs::read(&weights).unwrap(), weights_before);
}

#[test]
fn a_second_writer_of_one_output_is_refused_and_stale_temporaries_go() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_synth(dir.path());
    let out = dir.path().join("out.h5ad");
    // Another writer holds the output's lock.
    let lock = std::fs::File::create(dir.path().join(".out.h5ad.lock")).unwrap();
    lock.try_lock().unwrap();
    let o = run(&["convert", p(&data), "-o", p(&out)]);
    assert_bad_input(&o, &["another process is writing"]);
    assert!(!out.exists());
    drop(lock);
    // A writer killed earlier left its temporary file; the next one removes it.
    let stale = dir.path().join(".out.h5ad.tmp-4242");
    std::fs::write(&stale, b"half a file").unwrap();
    assert_ok(&run(&["-q", "convert", p(&data), "-o", p(&out)]));
    assert_eq!(
        entries(dir.path()),
        vec!["cells.h5ad".to_string(), "out.h5ad".to_string()]
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_writer_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed.h5ad");
    // Kill at several points of the run; the output either is complete or
    // does not exist, and no temporary file has a name.
    for delay_ms in [50u64, 150, 300, 600] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"))
            .args(["-q", "synth", "--cells", "4000", "-o", p(&out), "--force"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let names = entries(dir.path());
        assert!(
            names.iter().all(|n| !n.contains(".tmp-")),
            "after {delay_ms} ms: {names:?}"
        );
        if out.exists() {
            assert_ok(&run(&["-q", "inspect", p(&out)]));
        }
    }
}

#[test]
fn unknown_environment_variables_are_ignored_with_a_warning() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"));
    let o = cmd
        .env("CONCEPTLAB_HOME", "/somewhere")
        .env("CONCEPTLAB_SEED", "7")
        .arg("config")
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(stdout(&o).contains("seed = 7"), "{}", stdout(&o));
    assert!(stderr(&o).contains("CONCEPTLAB_HOME"), "{}", stderr(&o));
    // A misspelt key of a known section is still an error.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_conceptlab-cli"))
        .env("CONCEPTLAB_IO__COMPRESION", "none")
        .arg("config")
        .output()
        .unwrap();
    assert_bad_input(&o, &["compresion"]);
}

#[test]
fn config_shows_settings_as_written() {
    let o = run(&["config"]);
    assert_ok(&o);
    let text = stdout(&o);
    assert!(text.contains("dropout = 0.1\n"), "{text}");
    assert!(!text.contains("0000000"), "{text}");
}

#[test]
fn config_errors_name_keys_not_types() {
    for (key, fragment) in [
        ("train.max_epochs=many", "max_epochs"),
        ("model.kind=nope", "nope"),
        ("io.compression=zip", "zip"),
    ] {
        let o = run(&["--override", key, "config"]);
        assert_bad_input(&o, &[fragment]);
        let err = stderr(&o);
        for internal in [
            "TrainConfig",
            "ModelSettings",
            "IoSettings",
            "Settings",
            "usize",
        ] {
            assert!(!err.contains(internal), "{internal} in: {err}");
        }
    }
}

#[cfg(unix)]
#[test]
fn fifos_and_directories_are_not_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cells.h5ad");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.map(|s| s.success()).unwrap_or(false) {
        // Before the fix this blocked forever in open(2).
        let o = run(&["inspect", p(&fifo)]);
        assert_bad_input(&o, &["FIFO"]);
    }
    assert_bad_input(&run(&["inspect", p(dir.path())]), &["directory"]);
}

#[test]
fn a_category_with_a_comma_can_be_selected() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    assert_ok(&run(&[
        "-q",
        "fit",
        p(&pbmc()),
        "--model-type",
        "copy",
        "--concepts",
        "bulk_labels",
        "-o",
        p(&model),
    ]));
    // pbmc68k's bulk_labels has "CD4+/CD45RA+/CD25- Naive T"; the value of
    // a --where may hold commas too when they do not start a KEY=VALUE.
    let out = dir.path().join("edited.h5ad");
    let o = run(&[
        "edit",
        p(&pbmc()),
        "--model",
        p(&model),
        "--set",
        "bulk_labels=CD14+ Monocyte",
        "--where",
        "bulk_labels=Dendritic, CD4+ nothing",
        "-o",
        p(&out),
    ]);
    // The whole "Dendritic, CD4+ nothing" is the value: no such category.
    assert_bad_input(&o, &["Dendritic, CD4+ nothing"]);
}
