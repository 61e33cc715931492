//! Writes the man page and the shell completions into `crates/nsjail/doc/`
//! from nsjail's option table (`nsjail_config::docs`):
//! `cargo run -p nsjail --example gen_docs`. The test `tests/docs.rs`
//! fails when the committed files differ from what this writes.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc");
    std::fs::create_dir_all(doc.join("completions"))?;
    for (path, text) in nsjail::docs_files() {
        let p = doc.join(path);
        std::fs::write(&p, text)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}
