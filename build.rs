//! The Fluent catalogues are compiled into the binary by a macro, which cargo cannot see
//! reading them: this makes an edited catalogue rebuild the crate.

fn main() {
    println!("cargo:rerun-if-changed=assets/i18n");
    println!("cargo:rerun-if-changed=build.rs");
}
