//! Build steps cargo cannot see on its own: the Fluent catalogues are compiled into the binary
//! by a macro, so an edited catalogue must rebuild the crate; and the Windows exe carries its
//! icon and version information as resources.

fn main() {
    println!("cargo:rerun-if-changed=assets/i18n");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=packaging/windows/vramdeck.ico");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        let mut resource = winresource::WindowsResource::new();
        resource
            .set_icon("packaging/windows/vramdeck.ico")
            .set("ProductName", "vramdeck")
            .set(
                "FileDescription",
                "vramdeck: what the NVIDIA GPU is doing, what fits",
            );
        if let Err(e) = resource.compile() {
            // A missing windres leaves the exe without its icon, not unbuilt.
            println!("cargo:warning=no icon in the exe: {e}");
        }
    }
}
