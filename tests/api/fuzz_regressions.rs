//! Replays the inputs kept in `fuzz/regressions/<target>/` (crashes the fuzzers found,
//! fixed since, and seeds worth keeping) through the same checks the cargo-fuzz targets
//! run (`fuzz/checks.rs`). Pure parsing: no backend involved.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::Path;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 6] = [
    ("customer_json", checks::customer_json),
    ("phone_email", checks::phone_email),
    ("cursors", checks::cursors),
    ("if_match", checks::if_match),
    ("webhook_url", checks::webhook_url),
    ("query", checks::query),
];

#[test]
fn every_kept_fuzz_input_passes_its_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let dir = root.join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len(), "every target keeps inputs");
}
