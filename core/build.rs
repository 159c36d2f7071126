//! Embeds `openapi.json` without its indentation: the file stays readable in
//! the repository while the Worker carries about a third fewer bytes of it.

use std::path::Path;

/// Drops whitespace outside JSON strings.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

fn main() {
    println!("cargo:rerun-if-changed=openapi.json");
    let doc = std::fs::read_to_string("openapi.json").expect("core/openapi.json is readable");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("openapi.min.json"), minify(&doc))
        .expect("OUT_DIR is writable");
}
