//! With the `tch` feature, the binary (and this package's tests) get libtorch's library folder as
//! their run path, so `genopred` finds libtorch without `LD_LIBRARY_PATH`. torch-sys's build
//! script reports that folder to packages that depend on it directly (`links = "tch"`), as
//! `DEP_TCH_LIBTORCH_LIB`; without `tch` it is absent and this does nothing.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
