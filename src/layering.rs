//! The tests that keep the crate's structure as `lib.rs` draws it: top-level modules name
//! only modules of their own or lower layers, no modules name each other in a circle at
//! any depth (siblings inside `runtime` as much as top-level modules), every module is in
//! `lib.rs`'s diagram, every source file opens with a doc comment saying its job, and
//! `unsafe` lives in `src/sys/` (elsewhere only as a block around calls of its `unsafe
//! fn`s, whose SAFETY comments clippy's `undocumented_unsafe_blocks` asks for).
//!
//! How paths are read: every `crate::a::b` and `super::x` path outside comments and test
//! code, resolved to the deepest module that exists as a file. An edge from module
//! `p::a::..` to `p::b::..` is an edge `a -> b` among the children of `p`: that is the
//! graph that must have no circle. Edges between a module and its own ancestors or
//! descendants are a module and its parts, not siblings, and are not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module's layer, lowest first. A module may name modules of lower
/// layers, and of its own layer when that makes no cycle.
const LAYERS: &[(&str, &[&str])] = &[
    ("leaves", &["error", "digest", "ui", "cli"]),
    (
        "plumbing, settings, host facts",
        &["sys", "settings", "host"],
    ),
    ("store", &["store"]),
    ("context", &["context"]),
    ("registry, image", &["registry", "image"]),
    ("fake root, host-exec", &["fakeroot", "host_exec"]),
    ("runtime", &["runtime"]),
    ("export", &["export"]),
    ("ops", &["ops", "provision"]),
    ("commands", &["commands"]),
];

/// Files that are not modules of the library's structure.
const OUTSIDE: &[&str] = &["lib", "main", "layering"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// A module path, `["runtime", "holder", "apply"]`.
type ModPath = Vec<String>;

/// The module path of a source file relative to `src/` (`runtime/mod.rs` is `runtime`).
fn module_of(relative: &Path) -> ModPath {
    let mut parts: ModPath = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap();
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The code of `source` without its test module.
fn code_of(source: &str) -> &str {
    match source.find("#[cfg(test)]\nmod ") {
        Some(at) => &source[..at],
        None => source,
    }
}

/// The identifiers after each `prefix` in `line` (`crate::`, `super::`), each as the
/// list of `::`-separated names that follows, with `{a, b::c}` groups opened.
fn paths_after(line: &str, prefix: &str) -> Vec<Vec<String>> {
    fn ident(text: &str) -> (String, &str) {
        let name: String = text
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rest = &text[name.len()..];
        (name, rest)
    }
    /// The items of a `{...}` group (`group` starts after the brace), at its own depth.
    fn split_group(group: &str) -> Vec<&str> {
        let (mut depth, mut start, mut items) = (0, 0, Vec::new());
        for (at, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&group[start..at]);
                    return items;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..at]);
                    start = at + 1;
                }
                _ => {}
            }
        }
        items.push(&group[start..]);
        items
    }
    fn path_from(mut text: &str) -> Vec<Vec<String>> {
        let mut names = Vec::new();
        loop {
            if let Some(group) = text.strip_prefix('{') {
                return split_group(group)
                    .into_iter()
                    .flat_map(|item| path_from(item.trim()))
                    .map(|tail| names.iter().cloned().chain(tail).collect())
                    .collect();
            }
            let (name, rest) = ident(text);
            if name.is_empty() {
                break;
            }
            names.push(name);
            match rest.strip_prefix("::") {
                Some(more) => text = more,
                None => break,
            }
        }
        vec![names]
    }
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(prefix) {
        let before = &rest[..at];
        rest = &rest[at + prefix.len()..];
        // Part of a longer name (`my_crate::`), not the keyword.
        if before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let mut ups = 0;
        while let Some(more) = rest.strip_prefix(prefix) {
            ups += 1;
            rest = more;
        }
        let text = rest;
        for path in path_from(text) {
            let mut marked = vec!["super".to_owned(); ups];
            marked.extend(path);
            out.push(marked);
        }
    }
    out
}

/// The module paths `source` (of module `own`, from a `mod.rs` file or not) names
/// through `crate::` and `super::` outside comments and test code, each cut to the
/// deepest module of `modules`.
fn named_modules(
    source: &str,
    own: &ModPath,
    is_mod_rs: bool,
    modules: &BTreeSet<ModPath>,
) -> BTreeSet<ModPath> {
    let mut out = BTreeSet::new();
    // `super` of a module file `a/b.rs` (module a::b) is `a`; of `a/b/mod.rs` also `a`.
    let parent: ModPath = own[..own.len().saturating_sub(1)].to_vec();
    let _ = is_mod_rs;
    for line in code_of(source).lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut found: Vec<ModPath> = paths_after(line, "crate::");
        for path in paths_after(line, "super::") {
            let ups = path.iter().take_while(|n| *n == "super").count();
            let mut base = parent.clone();
            for _ in 0..ups {
                base.pop();
            }
            base.extend(path[ups..].iter().cloned());
            found.push(base);
        }
        for path in found {
            let deepest = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains(prefix));
            if let Some(module) = deepest {
                out.insert(module);
            }
        }
    }
    out
}

/// Every module of `src/` and the modules its file names.
fn graph(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let is_part = |relative: &Path| {
        let module = module_of(relative);
        let file = relative.file_name().unwrap().to_string_lossy();
        !module.is_empty()
            && !OUTSIDE.contains(&module[0].as_str())
            && file != "tests.rs"
            && !file.ends_with("_tests.rs")
    };
    let modules: BTreeSet<ModPath> = files
        .iter()
        .map(|p| p.strip_prefix(src).unwrap())
        .filter(|r| is_part(r))
        .map(module_of)
        .collect();
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for path in &files {
        let relative = path.strip_prefix(src).unwrap();
        if !is_part(relative) {
            continue;
        }
        let own = module_of(relative);
        let is_mod_rs = relative.file_name().is_some_and(|f| f == "mod.rs");
        let source = std::fs::read_to_string(path).unwrap();
        let named = named_modules(&source, &own, is_mod_rs, &modules);
        graph.entry(own.clone()).or_default().extend(named);
    }
    graph
}

/// The edges of `graph` as edges among the children of a common parent:
/// parent -> (child -> children it names).
fn sibling_edges(
    graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
) -> BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, named) in graph {
        for to in named {
            let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
            // A module and its own parts (or ancestors): not siblings.
            if common == from.len() || common == to.len() {
                continue;
            }
            out.entry(from[..common].to_vec())
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(to[common].clone());
        }
    }
    out
}

/// Circles in `graph` (a depth-first search for back edges), each as `a -> b -> a`.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            found.push(format!("{} -> {node}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(node) {
            return;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_has_a_layer_and_names_only_lower_ones() {
    let graph = graph(&src());
    let mut wrong = Vec::new();
    let top: BTreeSet<&String> = graph.keys().map(|m| &m[0]).collect();
    for module in top {
        if layer_of(module).is_none() {
            wrong.push(format!("module `{module}` has no layer in src/layering.rs"));
        }
    }
    let edges = sibling_edges(&graph);
    for (module, named) in edges.get(&Vec::new()).into_iter().flatten() {
        let Some(own) = layer_of(module) else {
            continue;
        };
        for other in named {
            if let Some(layer) = layer_of(other)
                && layer > own
            {
                wrong.push(format!(
                    "`{module}` ({}) names `{other}` ({}), a higher layer",
                    LAYERS[own].0, LAYERS[layer].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

/// What a verb's file (`commands/VERB.rs`) may name: the operations and the user
/// interface, never the runtime, the store or provisioning directly (the dispatcher,
/// `commands/mod.rs`, also starts box's internal entry points). `host-exec` runs inside a
/// box, where its client is the whole operation.
const VERBS_MAY_NAME: &[&str] = &["ops", "ui", "cli", "context", "error", "sys"];

#[test]
fn verbs_call_operations_not_the_layers_below_them() {
    let graph = graph(&src());
    let mut wrong = Vec::new();
    for (module, named) in &graph {
        let [top, verb] = module.as_slice() else {
            continue;
        };
        if top != "commands" || verb == "host_exec" {
            continue;
        }
        for other in named {
            if other[0] != "commands" && !VERBS_MAY_NAME.contains(&other[0].as_str()) {
                wrong.push(format!("commands::{verb} names `{}`", other.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "verbs reaching past the operations:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_modules_name_each_other_in_a_circle_at_any_depth() {
    let mut wrong = Vec::new();
    for (parent, children) in sibling_edges(&graph(&src())) {
        let place = if parent.is_empty() {
            "crate".to_owned()
        } else {
            parent.join("::")
        };
        for circle in circles(&children) {
            wrong.push(format!("in `{place}`: {circle}"));
        }
    }
    assert!(wrong.is_empty(), "import circles:\n{}", wrong.join("\n"));
}

#[test]
fn lib_rs_diagram_lists_every_top_level_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let diagram: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let top: BTreeSet<String> = graph(&src()).keys().map(|m| m[0].clone()).collect();
    let missing: Vec<&String> = top
        .iter()
        .filter(|m| {
            !diagram
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|word| word == m.as_str())
        })
        .collect();
    assert!(missing.is_empty(), "src/lib.rs's diagram lacks {missing:?}");
}

#[test]
fn every_source_file_opens_with_a_doc_comment() {
    let mut missing = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a module doc: {missing:?}"
    );
}

#[test]
fn the_reader_sees_grouped_nested_and_relative_paths_but_not_comments_or_tests() {
    let modules: BTreeSet<ModPath> = [
        "error",
        "store",
        "runtime",
        "runtime::join",
        "runtime::state",
        "runtime::members",
        "commands",
        "host",
        "host::fs",
    ]
    .iter()
    .map(|m| m.split("::").map(str::to_owned).collect())
    .collect();
    let source = "use crate::{error::failure, store, host::{fs::HostFs, x}};\nlet x = crate::runtime::join::exec(); // crate::ops\nuse super::state::State;\nsuper::super::commands::x();\n#[cfg(test)]\nmod tests { use crate::commands; }\n";
    let own: ModPath = vec!["runtime".into(), "members".into()];
    let named: Vec<String> = named_modules(source, &own, false, &modules)
        .into_iter()
        .map(|m| m.join("::"))
        .collect();
    assert_eq!(
        named,
        [
            "commands",
            "error",
            "host",
            "host::fs",
            "runtime::join",
            "runtime::state",
            "store"
        ]
    );
}

#[test]
fn a_circle_among_nested_siblings_is_found() {
    let path = |m: &str| -> ModPath { m.split("::").map(str::to_owned).collect() };
    let mut graph = BTreeMap::new();
    graph.insert(
        path("runtime::members"),
        BTreeSet::from([path("runtime::state"), path("error")]),
    );
    graph.insert(
        path("runtime::state"),
        BTreeSet::from([path("runtime::members")]),
    );
    let edges = sibling_edges(&graph);
    let found = circles(&edges[&path("runtime")]);
    assert_eq!(found, ["members -> state -> members"]);
}

/// Where `source` (a file outside `src/sys/`) uses `unsafe` other than as a block of
/// calls of `crate::sys` functions (`unsafe { crate::sys::fork() }`): each such place as
/// `line N: text`. Comments are left out; `unsafe fn`, `unsafe impl` and blocks that do
/// anything else are reported.
fn unsafe_outside_sys(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("unsafe").map(|at| from + at) {
        from = at + "unsafe".len();
        let before = code[..at].chars().next_back();
        let after = code[from..].chars().next();
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let place = || {
            let text = code.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}: {text}")
        };
        let Some(body) = code[from..].trim_start().strip_prefix('{') else {
            found.push(place());
            continue;
        };
        // The block's text up to its closing brace.
        let mut depth = 0;
        let end = body.char_indices().find_map(|(i, c)| match c {
            '{' => {
                depth += 1;
                None
            }
            '}' if depth == 0 => Some(i),
            '}' => {
                depth -= 1;
                None
            }
            _ => None,
        });
        let Some(end) = end else {
            found.push(place());
            continue;
        };
        let only_sys_calls = body[..end]
            .split(';')
            .map(str::trim)
            .filter(|statement| !statement.is_empty())
            .all(|statement| statement.starts_with("crate::sys::"));
        if !only_sys_calls || body[..end].trim().is_empty() {
            found.push(place());
        }
    }
    found
}

#[test]
fn unsafe_lives_in_sys() {
    let mut wrong = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path != src().join("sys") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && path != src().join("layering.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                for place in unsafe_outside_sys(&text) {
                    wrong.push(format!("{}: {place}", path.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "`unsafe` outside src/sys/ (put the unsafe operation in a src/sys/ wrapper; elsewhere \
         only `unsafe {{ crate::sys::F(..) }}` calls of its unsafe fns):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_unsafe_reader_allows_only_blocks_of_sys_calls() {
    let source = "// unsafe in a comment, and unsafe_op_in_unsafe_fn, are words\n\
        let a = unsafe { crate::sys::fork() }.context(\"fork\")?;\n\
        let w = unsafe {\n    crate::sys::close_inherited_fds_except(fd);\n    crate::sys::take_passed_fd(fd)\n};\n\
        let b = unsafe { libc::getpid() };\n\
        unsafe fn f() {}\n\
        unsafe impl Send for X {}\n\
        let c = unsafe { crate::sys::fork(); libc::close(3) };\n";
    assert_eq!(
        unsafe_outside_sys(source),
        [
            "line 7: let b = unsafe { libc::getpid() };",
            "line 8: unsafe fn f() {}",
            "line 9: unsafe impl Send for X {}",
            "line 10: let c = unsafe { crate::sys::fork(); libc::close(3) };",
        ]
    );
}
