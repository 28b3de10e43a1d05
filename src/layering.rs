//! The test that keeps the crate's layers pointing down (see the diagram in `lib.rs`):
//! it reads the `crate::` paths of every source file (test code excluded) and fails when
//! a module names one of a higher layer, or when modules of one layer name each other in
//! a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module's layer, lowest first. A module may name modules of lower
/// layers, and of its own layer when that makes no cycle.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "error", "report", "digest", "sys", "idmap", "config", "distro", "prompt", "cli",
            "progress", "host", "hostfs", "xauth", "userns", "protocol", "manifest", "seccomp",
            "cdi",
        ],
    ),
    ("store", &["store"]),
    ("context", &["context"]),
    ("registry, image", &["registry", "image"]),
    ("runtime", &["runtime"]),
    ("export", &["export"]),
    ("ops", &["ops", "provision"]),
    ("commands", &["commands"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The top-level modules `source` names through `crate::` outside comments and test code.
fn named_modules(source: &str) -> BTreeSet<String> {
    let code = match source.find("#[cfg(test)]\nmod ") {
        Some(at) => &source[..at],
        None => source,
    };
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`: the first name of each item.
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Every top-level module and the modules its files name.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let top = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            let file = relative.file_name().unwrap().to_string_lossy();
            if path.extension().is_none_or(|e| e != "rs")
                || ["lib", "main", "layering"].contains(&top.as_str())
                || file == "tests.rs"
            {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let named = graph.entry(top.clone()).or_default();
            named.extend(named_modules(&source).into_iter().filter(|m| *m != top));
        }
    }
    graph
}

#[test]
fn every_module_has_a_layer_and_names_only_lower_ones() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut wrong = Vec::new();
    for (module, named) in &graph {
        let Some(own) = layer_of(module) else {
            wrong.push(format!("module `{module}` has no layer in src/layering.rs"));
            continue;
        };
        for other in named {
            match layer_of(other) {
                Some(layer) if layer > own => wrong.push(format!(
                    "`{module}` ({}) names `{other}` ({}), a higher layer",
                    LAYERS[own].0, LAYERS[layer].0
                )),
                _ => {}
            }
        }
    }
    // Within one layer: no cycle (a depth-first search for a back edge).
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            cycles.push(format!(
                "import cycle: {} -> {node}",
                path[at..].join(" -> ")
            ));
            return;
        }
        if !done.insert(node) {
            return;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if layer_of(next) == layer_of(node) {
                visit(next, graph, path, done, cycles);
            }
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut wrong);
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_inline_paths_but_not_comments_or_tests() {
    let source = "use crate::{error::failure, store};\nlet x = crate::runtime::join(); // crate::ops\n#[cfg(test)]\nmod tests { use crate::commands; }\n";
    let named: Vec<String> = named_modules(source).into_iter().collect();
    assert_eq!(named, ["error", "runtime", "store"]);
}
