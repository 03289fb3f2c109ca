//! The crate's layers, as ARCHITECTURE.md states them: `model` (the core
//! rules) uses nothing else of ours; `replication` uses `model`; `edge`
//! uses both; `workload` uses `model`. This reads every `crate::` path in
//! `src/` and fails on an arrow that runs upwards, naming file and line.

use std::path::{Path, PathBuf};

/// Each layer (a folder or file under `src/`) and the layers it may use.
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &["model"]),
    ("replication", &["model", "replication"]),
    ("edge", &["model", "replication", "edge"]),
    ("workload", &["model", "workload"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layers named by `crate::LAYER` paths in `text`, with line numbers;
/// `use crate::{a, b}` groups too.
fn used_layers(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for part in inner.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((n + 1, name));
                    }
                }
            } else {
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.push((n + 1, name));
            }
            rest = &after[1.min(after.len())..];
        }
    }
    found
}

#[test]
fn no_layer_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs");
        let Some((layer, allowed)) = LAYERS.iter().find(|(name, _)| *name == top) else {
            // lib.rs and main.rs sit above every layer.
            assert!(
                matches!(top, "lib" | "main"),
                "{} is in no layer: put it under one of {:?}",
                relative.display(),
                LAYERS.iter().map(|(l, _)| *l).collect::<Vec<_>>()
            );
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in used_layers(&text) {
            checked += 1;
            if !allowed.contains(&used.as_str()) {
                wrong.push(format!(
                    "src/{}:{line}: `{layer}` uses `crate::{used}`, a layer above it (or no layer)",
                    relative.display()
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} crate paths found: is the parser right?");
    assert!(wrong.is_empty(), "layer violations:\n{}", wrong.join("\n"));
}

#[test]
fn the_parser_sees_grouped_and_plain_paths() {
    let found = used_layers("use crate::model::x;\nuse crate::{edge::a, replication::b};\n// crate::edge in a comment\nlet y = crate::edge::z();");
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["model", "edge", "replication", "edge"]);
}
