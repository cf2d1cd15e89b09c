//! `datasets/manifest.csv` and the compiled-in manifest agree, and the
//! recorded sha256 values match the copies in `../shared/datasets`.

use std::path::Path;

use hebb_data::manifest::{Check, MANIFEST};
use sha2::{Digest, Sha256};

/// A manifest entry rendered as a row of `datasets/manifest.csv`.
fn row(path: &str, url: &str, check: Check<'_>) -> Vec<String> {
    let (sha, kind) = match check {
        Check::Sha256(h) => (h.to_string(), "sha256".to_string()),
        Check::IrisCsv {
            rows,
            features,
            classes,
            sha256,
        } => (
            sha256.to_string(),
            format!("iris {rows}x{features}x{classes}"),
        ),
        Check::None => (String::new(), "none".to_string()),
    };
    vec![path.into(), url.into(), sha, kind]
}

#[test]
fn csv_manifest_matches_the_code() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/manifest.csv");
    let Ok(mut reader) = csv::Reader::from_path(&file) else {
        eprintln!("skipping: no {}", file.display());
        return;
    };
    assert_eq!(
        reader.headers().unwrap(),
        vec!["path", "url", "sha256", "check"]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let expected: Vec<Vec<String>> = MANIFEST
        .iter()
        .map(|f| row(f.path, f.url, f.check))
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn recorded_hashes_match_the_shared_copies() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    for entry in MANIFEST {
        let Ok(bytes) = std::fs::read(shared.join(entry.path)) else {
            eprintln!("skipping {}: not in {}", entry.path, shared.display());
            continue;
        };
        assert_eq!(
            Some(hex::encode(Sha256::digest(&bytes)).as_str()),
            entry.sha256(),
            "{}",
            entry.path
        );
    }
}
