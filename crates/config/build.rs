//! Compiles `proto/config.proto` into Rust with rust-protobuf's pure-Rust
//! parser, so no `protoc` binary is needed anywhere.
fn main() {
    protobuf_codegen::Codegen::new()
        .pure()
        .include("proto")
        .input("proto/config.proto")
        .cargo_out_dir("proto")
        .run_from_script();
    println!("cargo:rerun-if-changed=proto/config.proto");
}
