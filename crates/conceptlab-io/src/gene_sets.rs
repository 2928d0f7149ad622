//! Gene-set files: MSigDB GMT, Reactome's gene-to-pathway TSV and GO
//! annotation (GAF) files, read into one [`GeneSets`] (name → genes, in file
//! order, each gene once).
//!
//! Reading is bounded: a line longer than [`MAX_LINE_BYTES`], a file of more
//! than [`MAX_LINES`] lines or more than [`MAX_SETS`] sets is refused, so a
//! wrong or hostile file fails with a message instead of exhausting memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use conceptlab_core::preprocess::GeneSets;

use crate::{IoError, Result};

/// The longest line read (MSigDB's largest sets are well under 1 MiB).
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// The most lines read (Reactome's all-levels Ensembl file has ~5 million).
pub const MAX_LINES: usize = 50_000_000;
/// The most distinct sets (GO biological process has ~30,000 terms).
pub const MAX_SETS: usize = 1_000_000;

/// The layout of a gene-set file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneSetFormat {
    /// MSigDB GMT: `name TAB description TAB gene TAB gene ...` per line.
    Gmt,
    /// Reactome TSV (e.g. `Ensembl2Reactome.txt`): columns 0, 1, 3 are the
    /// gene, the pathway id and its name; no header.
    Reactome,
    /// GO annotation file (GAF 2.x): columns 2, 3, 4, 8 are the gene symbol,
    /// the qualifier, the GO term and the aspect; lines starting with `!`
    /// are headers. Kept: aspect `P` with qualifier `involved_in`.
    Go,
}

impl GeneSetFormat {
    /// The format named `gmt`, `reactome` or `go`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "gmt" => Some(Self::Gmt),
            "reactome" => Some(Self::Reactome),
            "go" | "gaf" => Some(Self::Go),
            _ => None,
        }
    }

    /// The format a file name suggests: `.gmt`, `.gaf` (also `.gaf.*`), and
    /// otherwise Reactome's TSV for `.txt` / `.tsv`.
    pub fn from_extension(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".gmt") {
            Some(Self::Gmt)
        } else if name.ends_with(".gaf") || name.contains(".gaf.") {
            Some(Self::Go)
        } else if name.ends_with(".txt") || name.ends_with(".tsv") {
            Some(Self::Reactome)
        } else {
            None
        }
    }
}

/// Reads the gene sets of `path`. `organism_prefix` keeps only Reactome
/// rows whose gene starts with it (`ENSG` human, `ENSMUSG` mouse; the
/// Reactome files mix organisms); it is refused for the other formats.
///
/// GO: the reference skips a fixed 38 header lines, which silently drops
/// annotations (or keeps header text) in files whose header has another
/// length; here every line starting with `!` is a header, wherever it is.
pub fn read_gene_sets(
    path: &Path,
    format: GeneSetFormat,
    organism_prefix: Option<&str>,
) -> Result<GeneSets> {
    let shown = path.display().to_string();
    conceptlab_fs::check_input(path)?;
    let file = File::open(path).map_err(|error| IoError::Open {
        path: shown.clone(),
        error,
    })?;
    parse_gene_sets(BufReader::new(file), &shown, format, organism_prefix)
}

/// [`read_gene_sets`] on any reader; `path` names it in errors.
pub fn parse_gene_sets(
    mut reader: impl BufRead,
    path: &str,
    format: GeneSetFormat,
    organism_prefix: Option<&str>,
) -> Result<GeneSets> {
    let err = |line: usize, reason: String| IoError::GeneSets {
        path: path.to_owned(),
        line,
        reason,
    };
    if organism_prefix.is_some() && format != GeneSetFormat::Reactome {
        return Err(err(
            0,
            "an organism prefix applies to Reactome files only".into(),
        ));
    }
    let mut sets = GeneSets::new();
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| err(number + 1, format!("cannot read: {e}")))?;
        if read == 0 {
            break;
        }
        number += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            return Err(err(
                number,
                format!("line longer than {MAX_LINE_BYTES} bytes: not a gene-set file?"),
            ));
        }
        if number > MAX_LINES {
            return Err(err(number, format!("more than {MAX_LINES} lines")));
        }
        let text =
            std::str::from_utf8(&buf).map_err(|e| err(number, format!("not UTF-8 text: {e}")))?;
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match format {
            GeneSetFormat::Gmt => {
                if fields.len() < 2 {
                    return Err(err(
                        number,
                        "expected `name TAB description TAB genes...` (GMT)".into(),
                    ));
                }
                let name = fields[0].trim();
                if name.is_empty() {
                    return Err(err(number, "empty set name".into()));
                }
                if !sets.create(name) {
                    return Err(err(number, format!("set `{name}` is defined twice")));
                }
                for gene in fields[2..]
                    .iter()
                    .map(|g| g.trim())
                    .filter(|g| !g.is_empty())
                {
                    sets.add(name, gene);
                }
            }
            GeneSetFormat::Reactome => {
                if fields.len() < 4 {
                    return Err(err(
                        number,
                        format!(
                            "{} columns; a Reactome file has gene, pathway, URL, name, ...",
                            fields.len()
                        ),
                    ));
                }
                let (gene, pathway) = (fields[0].trim(), fields[1].trim());
                if organism_prefix.is_some_and(|p| !gene.starts_with(p)) {
                    continue;
                }
                if gene.is_empty() || pathway.is_empty() {
                    return Err(err(number, "empty gene or pathway".into()));
                }
                sets.add(pathway, gene);
            }
            GeneSetFormat::Go => {
                if line.starts_with('!') {
                    continue;
                }
                if fields.len() < 9 {
                    return Err(err(
                        number,
                        format!("{} columns; a GAF line has at least 15", fields.len()),
                    ));
                }
                let (gene, qualifier, term, aspect) =
                    (fields[2].trim(), fields[3], fields[4].trim(), fields[8]);
                if aspect != "P" || qualifier != "involved_in" {
                    continue;
                }
                if gene.is_empty() || term.is_empty() {
                    return Err(err(number, "empty gene symbol or GO term".into()));
                }
                sets.add(term, gene);
            }
        }
        if sets.len() > MAX_SETS {
            return Err(err(number, format!("more than {MAX_SETS} gene sets")));
        }
    }
    if sets.is_empty() {
        let reason = match format {
            // GAF 2.1 leaves the qualifier of positive annotations empty.
            GeneSetFormat::Go => {
                "no gene sets in the file (no aspect-P annotation with qualifier `involved_in`, as GAF 2.2 writes them)"
            }
            _ => "no gene sets in the file",
        };
        return Err(err(number, reason.into()));
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, format: GeneSetFormat, prefix: Option<&str>) -> Result<GeneSets> {
        parse_gene_sets(text.as_bytes(), "sets.txt", format, prefix)
    }

    fn listed(s: &GeneSets) -> Vec<(String, Vec<String>)> {
        s.iter()
            .map(|(n, g)| (n.to_owned(), g.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    #[test]
    fn gmt_in_file_order_without_duplicates() {
        let s = parse(
            "B\tdesc\tX\tY\tX\t\r\n\nA\thttp://x\tZ\n",
            GeneSetFormat::Gmt,
            None,
        )
        .unwrap();
        assert_eq!(
            listed(&s),
            vec![
                ("B".into(), vec!["X".into(), "Y".into()]),
                ("A".into(), vec!["Z".into()])
            ]
        );
        let e = parse("A\td\tX\nA\td\tY\n", GeneSetFormat::Gmt, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sets.txt: line 2") && e.contains("twice"), "{e}");
        let e = parse("A\n", GeneSetFormat::Gmt, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn reactome_with_organism_filter() {
        let text = "ENSG01\tR-HSA-1\turl\tInterferon signaling\tIEA\tHomo sapiens\n\
                    ENSMUSG01\tR-MMU-1\turl\tInterferon signaling\tIEA\tMus musculus\n\
                    ENSG02\tR-HSA-1\turl\tInterferon signaling\tIEA\tHomo sapiens\n";
        let s = parse(text, GeneSetFormat::Reactome, Some("ENSG")).unwrap();
        assert_eq!(
            listed(&s),
            vec![("R-HSA-1".into(), vec!["ENSG01".into(), "ENSG02".into()])]
        );
        assert_eq!(parse(text, GeneSetFormat::Reactome, None).unwrap().len(), 2);
        let e = parse("a\tb\n", GeneSetFormat::Reactome, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("2 columns"), "{e}");
    }

    #[test]
    fn go_keeps_biological_process_involved_in() {
        let row = |sym: &str, q: &str, term: &str, aspect: &str| {
            format!(
                "UniProtKB\tP1\t{sym}\t{q}\t{term}\tPMID:1\tIDA\t\t{aspect}\tname\t\tprotein\ttaxon:9606\t20200101\tUniProt\n"
            )
        };
        let text = format!(
            "!gaf-version: 2.2\n!generated\n{}{}{}{}!late comment\n{}",
            row("STAT1", "involved_in", "GO:1", "P"),
            row("STAT2", "NOT|involved_in", "GO:1", "P"),
            row("STAT3", "enables", "GO:2", "F"),
            row("IRF1", "involved_in", "GO:3", "C"),
            row("IRF9", "involved_in", "GO:1", "P"),
        );
        let s = parse(&text, GeneSetFormat::Go, None).unwrap();
        assert_eq!(
            listed(&s),
            vec![("GO:1".into(), vec!["STAT1".into(), "IRF9".into()])]
        );
        assert!(parse(&text, GeneSetFormat::Go, Some("ENSG")).is_err());
    }

    #[test]
    fn long_lines_and_empty_files_are_refused() {
        let long = format!("A\td\t{}\n", "x".repeat(MAX_LINE_BYTES + 10));
        let e = parse(&long, GeneSetFormat::Gmt, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than"), "{e}");
        let e = parse("\n\n", GeneSetFormat::Gmt, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no gene sets"), "{e}");
    }

    #[test]
    fn formats_by_name_and_extension() {
        assert_eq!(GeneSetFormat::parse("GMT"), Some(GeneSetFormat::Gmt));
        assert_eq!(
            GeneSetFormat::from_extension(Path::new("goa_human.gaf.txt")),
            Some(GeneSetFormat::Go)
        );
        assert_eq!(
            GeneSetFormat::from_extension(Path::new("h.all.v2023.symbols.gmt")),
            Some(GeneSetFormat::Gmt)
        );
        assert_eq!(GeneSetFormat::from_extension(Path::new("x.h5ad")), None);
    }
}
