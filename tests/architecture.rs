//! The layering of `src/` that docs/ARCHITECTURE.md ("Layers") states, checked from the
//! `crate::` and `super::` paths of every library file (tests excluded): no import cycle
//! between folders, none between files but those the document lists, and none of its "never"
//! arrows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every library source file as its module path (`algo::mgrpo` for `src/algo/mgrpo/mod.rs`),
/// test files left out.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let path = e.path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                if name == "tests" || name.ends_with("_tests") || name == "main" {
                    continue;
                }
                let mut p = prefix.to_vec();
                if name != "mod" && name != "lib" {
                    p.push(name);
                }
                out.insert(p.join("::"), path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out.retain(|m, _| !m.is_empty());
    out
}

/// The code of a file before its in-file test module, comments left out (a doc link is not
/// an import).
fn library_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` tree names, braces expanded (`a::{b, c::d}` → `a::b`, `a::c::d`).
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap().trim().to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|p| match p.as_str() {
            "self" => prefix.to_string(),
            _ => format!("{prefix}::{p}"),
        })
        .collect()
}

/// The absolute paths (`crate::...` without `crate::`) a file's code uses: its `use` trees
/// (`crate::`, `super::` and child-module paths, resolved against the file's module `module`)
/// and the `crate::` paths in its code. A `pub use` is the module's facade (its children's
/// items re-exported), not a use; [`reexports`] follows it instead.
fn named_paths(text: &str, module: &str) -> Vec<String> {
    let parent = |m: &str| -> String { m.rsplit_once("::").map_or(String::new(), |p| p.0.into()) };
    let join = |base: &str, rest: &str| -> String {
        if base.is_empty() {
            rest.to_string()
        } else {
            format!("{base}::{rest}")
        }
    };
    let resolve = |p: &str| -> String {
        if let Some(rest) = p.strip_prefix("crate::") {
            return rest.to_string();
        }
        let (mut base, mut rest) = (module.to_string(), p);
        if rest.starts_with("super::") {
            while let Some(r) = rest.strip_prefix("super::") {
                base = parent(&base);
                rest = r;
            }
        }
        // a child module's path (or an external crate's, which resolves to no file)
        join(&base, rest.strip_prefix("self::").unwrap_or(rest))
    };
    let mut out = Vec::new();
    for statement in text.split(';') {
        let s = statement.trim_start();
        let s = s.rsplit('\n').next().unwrap_or(s).trim_start();
        if let Some(tree) = s.strip_prefix("use ") {
            out.extend(expand(tree).iter().map(|p| resolve(p)));
        }
    }
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let path: String = rest[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(resolve(path.trim_end_matches(':')));
        rest = &rest[i + 7..];
    }
    out
}

/// `module::Name` → the file it is defined in, for every `pub use child::...::Name` of a
/// module's file (its facade).
fn reexports(files: &BTreeMap<String, PathBuf>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (module, path) in files {
        let text = library_text(path);
        for statement in text.split(';') {
            let s = statement.trim_start();
            let s = s.rsplit('\n').next().unwrap_or(s).trim_start();
            let Some(tree) = s
                .strip_prefix("pub use ")
                .or_else(|| s.strip_prefix("pub(crate) use "))
            else {
                continue;
            };
            for p in expand(tree) {
                let name = p.rsplit("::").next().unwrap().to_string();
                let full = if let Some(r) = p.strip_prefix("crate::") {
                    r.to_string()
                } else if module.is_empty() {
                    p.clone()
                } else {
                    format!("{module}::{p}")
                };
                if let Some(o) = owner_file(&full, files) {
                    out.insert(format!("{module}::{name}"), o.to_string());
                }
            }
        }
    }
    out
}

/// The module (file) a path lands in: its longest prefix that is a file's module.
fn owner_file<'a>(path: &str, files: &'a BTreeMap<String, PathBuf>) -> Option<&'a str> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find_map(|p| files.get_key_value(&p).map(|(k, _)| k.as_str()))
}

/// The file a path's item is defined in: [`owner_file`], through a module's re-exports.
fn owner(
    path: &str,
    files: &BTreeMap<String, PathBuf>,
    reexported: &BTreeMap<String, String>,
) -> Option<String> {
    let file = owner_file(path, files)?;
    let rest = path
        .strip_prefix(file)
        .unwrap_or("")
        .trim_start_matches("::");
    let item = rest.split("::").next().unwrap_or("");
    match reexported.get(&format!("{file}::{item}")) {
        Some(target) if !item.is_empty() => Some(target.clone()),
        _ => Some(file.to_string()),
    }
}

/// Strongly connected components of more than one node (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            if !t.index.contains_key(w.as_str()) {
                visit(t, w);
                let lw = t.low[w.as_str()];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w.as_str()) {
                let iw = t.index[w.as_str()];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = BTreeSet::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// File → files it names, and folder (top-level module) → folders it names.
fn graphs() -> (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules(&src);
    let reexported = reexports(&files);
    let (mut by_file, mut by_folder) = (BTreeMap::new(), BTreeMap::new());
    for (module, path) in &files {
        let top = module.split("::").next().unwrap().to_string();
        let f: &mut BTreeSet<String> = by_file.entry(module.clone()).or_default();
        let d: &mut BTreeSet<String> = by_folder.entry(top.clone()).or_default();
        for p in named_paths(&library_text(path), module) {
            if let Some(o) = owner(&p, &files, &reexported) {
                let o = o.as_str();
                if o != module {
                    f.insert(o.to_string());
                }
                let o_top = o.split("::").next().unwrap();
                if o_top != top {
                    d.insert(o_top.to_string());
                }
            }
        }
    }
    (by_file, by_folder)
}

/// The file cycles docs/ARCHITECTURE.md lists under "Layers" (`- cycle: a, b, c`).
fn documented_cycles() -> Vec<BTreeSet<String>> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .unwrap();
    doc.lines()
        .filter_map(|l| l.trim().strip_prefix("- cycle: "))
        .map(|l| {
            l.split(" — ")
                .next()
                .unwrap()
                .split(',')
                .map(|m| m.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

/// The "never" arrows docs/ARCHITECTURE.md lists (`- never: a → b`; `*` is every module but
/// `b`'s and the command line's, `cli`, the top that calls everything).
fn never_arrows() -> Vec<(String, String)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .unwrap();
    doc.lines()
        .filter_map(|l| l.trim().strip_prefix("- never: "))
        .map(|l| {
            let (a, b) = l.split_once(" → ").unwrap();
            let b = b.split(" — ").next().unwrap();
            (
                a.trim().trim_matches('`').to_string(),
                b.trim().trim_matches('`').to_string(),
            )
        })
        .collect()
}

#[test]
fn no_cycle_between_folders() {
    let (_, folders) = graphs();
    let c = cycles(&folders);
    assert!(c.is_empty(), "import cycles between folders: {c:?}");
}

#[test]
fn file_cycles_are_the_documented_ones() {
    let (files, _) = graphs();
    let found = cycles(&files);
    for c in &found {
        eprintln!(
            "- cycle: {}",
            c.iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let documented = documented_cycles();
    for c in &found {
        assert!(
            documented.contains(c),
            "an import cycle docs/ARCHITECTURE.md does not list: {c:?}"
        );
    }
    for d in &documented {
        assert!(
            found.contains(d),
            "docs/ARCHITECTURE.md lists a cycle that is gone: {d:?}"
        );
    }
}

#[test]
fn no_never_arrow() {
    let (files, folders) = graphs();
    let arrows = never_arrows();
    assert!(arrows.len() >= 5, "{arrows:?}");
    for (from, to) in arrows {
        let graph = if from.contains("::") || to.contains("::") || from == "*" {
            &files
        } else {
            &folders
        };
        let hit: Vec<_> = graph
            .iter()
            .filter(|(k, _)| match from.as_str() {
                "*" => ![to.as_str(), "cli"]
                    .iter()
                    .any(|top| *k == top || k.starts_with(&format!("{top}::"))),
                _ => *k == &from || k.starts_with(&format!("{from}::")),
            })
            .filter(|(_, v)| {
                v.iter()
                    .any(|t| *t == to || t.starts_with(&format!("{to}::")))
            })
            .map(|(k, _)| k.clone())
            .collect();
        assert!(
            hit.is_empty(),
            "{from} → {to} is a \"never\" arrow, but {hit:?} import it"
        );
    }
}

/// The checker itself: braces, `super::` and inline paths resolve as Rust resolves them.
#[test]
fn paths_resolve() {
    assert_eq!(
        expand("crate::a::{b::C, d, self}"),
        ["crate::a::b::C", "crate::a::d", "crate::a"]
    );
    let text = "use super::x::Y;\nuse crate::m::{n, o::P};\nfn f() { crate::q::r(); }\n";
    let got = named_paths(text, "a::b");
    assert_eq!(got, ["a::x::Y", "m::n", "m::o::P", "m", "q::r"]);
    // a child module's path; a facade's re-export is not a use
    let got = named_paths("mod c;\npub use c::D;\nuse c::E;\n", "a");
    assert_eq!(got, ["a::c::E"]);
    let mut g = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.to_string())
            .or_insert_with(BTreeSet::new)
            .insert(b.to_string());
    }
    let want: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(cycles(&g), vec![want]);
}
