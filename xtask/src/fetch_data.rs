//! `cargo xtask fetch-data [NAME...]`: argument parsing and rendering for
//! [`crate::fetch`] (a progress bar on a terminal, a line every few seconds
//! otherwise, one `error:` line and exit 2 on bad input or no network).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use conceptlab_fs::memory::human;
use indicatif::{ProgressBar, ProgressStyle};

use crate::fetch::{self, Event, FetchError, Format, Manifest, Observer, Options, Outcome};

#[derive(clap::Args)]
pub struct Args {
    /// Data sets to fetch, by manifest name (all when none is named).
    names: Vec<String>,
    /// The manifest to read.
    #[arg(long, default_value_os_t = default_manifest())]
    manifest: PathBuf,
    /// Use downloads whose sha256 the manifest does not pin (their hash is
    /// printed, to be pinned). Without it they are kept aside, not used.
    #[arg(long)]
    trust_unpinned: bool,
    /// List the data sets and whether each is in place; download nothing.
    #[arg(long)]
    list: bool,
    /// Seconds to wait for a name lookup or a connection before giving up.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
}

fn default_manifest() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask
        .parent()
        .unwrap_or(xtask)
        .join("data")
        .join("manifest.toml")
}

pub fn run(args: &Args) -> Result<()> {
    if let Err(e) = execute(args) {
        eprintln!("error: {e}");
        std::process::exit(if e.is_bad_input() { 2 } else { 1 });
    }
    Ok(())
}

fn execute(args: &Args) -> Result<(), FetchError> {
    let manifest = Manifest::load(&args.manifest)?;
    let entries = manifest.select(&args.names)?;
    if args.list {
        for entry in entries {
            list(&manifest, entry);
        }
        return Ok(());
    }
    let options = Options {
        trust_unpinned: args.trust_unpinned,
        connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
        ..Options::default()
    };
    let mut view = View::new();
    for entry in entries {
        let report = fetch::fetch(&manifest, entry, &options, &mut view)?;
        view.finish();
        let what = match report.outcome {
            Outcome::AlreadyThere => "already in place, verified".to_string(),
            Outcome::Downloaded => "downloaded and verified".to_string(),
            Outcome::Unpacked { files } => format!("verified and unpacked ({files} files)"),
        };
        println!("{}: {what}: {}", report.name, report.path.display());
        if !report.pinned {
            println!(
                "{}: UNPINNED, used on --trust-unpinned; sha256 {} (pin it in {} as sha256 = \"{}\")",
                report.name,
                report.sha256,
                manifest.file.display(),
                report.sha256
            );
        }
    }
    Ok(())
}

fn list(manifest: &Manifest, entry: &fetch::Entry) {
    let state = if fetch::looks_present(manifest, entry) {
        "present"
    } else {
        "absent"
    };
    let format = match entry.format {
        Format::File => "file",
        Format::Zip => "zip",
    };
    let size = entry.size.map_or("size unknown".to_string(), human);
    let pin = if entry.is_pinned() {
        "pinned"
    } else {
        "UNPINNED"
    };
    println!(
        "{:<10} {format:<4} {state:<7} {pin:<8} {size:>10}  {}",
        entry.name,
        fetch::destination(manifest, entry).display(),
    );
    println!("           {}", entry.description);
    println!("           licence: {}", entry.licence);
}

/// How often a progress line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Renders events: an indicatif bar on a terminal, periodic lines otherwise.
struct View {
    terminal: bool,
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl View {
    fn new() -> View {
        View {
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            last_line: Instant::now(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn start_bar(&mut self, name: &str, resume_from: u64, total: Option<u64>) {
        self.finish();
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix} {spinner} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(name.to_string());
        bar.set_position(resume_from);
        self.bar = Some(bar);
    }
}

fn amount(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) if total > 0 => format!(
            "{} of {} ({:.0}%)",
            human(done),
            human(total),
            100.0 * done as f64 / total as f64
        ),
        _ => human(done),
    }
}

impl Observer for View {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Resolve { name, url } => {
                eprintln!("{name}: looking up the OSF download link at {url}")
            }
            Event::Download {
                name,
                url,
                resume_from,
                total,
            } => {
                if resume_from > 0 {
                    eprintln!("{name}: resuming {url} at {}", amount(resume_from, total));
                } else {
                    eprintln!(
                        "{name}: downloading {url} ({})",
                        total.map_or("size unknown".to_string(), human)
                    );
                }
                self.last_line = Instant::now();
                if self.terminal {
                    self.start_bar(name, resume_from, total);
                }
            }
            Event::Progress { name, done, total } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(done);
                } else if self.last_line.elapsed() >= LOG_EVERY {
                    eprintln!("{name}: {}", amount(done, total));
                    self.last_line = Instant::now();
                }
            }
            Event::Restart { name, reason } => {
                self.finish();
                eprintln!("{name}: starting over: {reason}");
            }
            Event::Fallback { name, reason } => {
                self.finish();
                eprintln!("{name}: {reason}; trying the next mirror");
            }
            Event::Verify { name, path } => {
                self.finish();
                eprintln!("{name}: verifying {}", path.display());
            }
            Event::Unpack { name, dest } => eprintln!("{name}: unpacking into {}", dest.display()),
        }
    }
}
