//! Link the `switchboard` binary with packed relative relocations (RELR, `DT_RELR`).
//!
//! The binary is a position-independent executable, and the dynamic loader applies about
//! 60,000 relative relocations to it at every start. As classic `RELA` entries they take 24
//! bytes each, a table of about 1.4 MiB that the loader reads in full: resident memory and
//! start-up time of every command, `switchboard serve` included. Packed, the table shrinks to a
//! few KiB.
//!
//! GNU ld 2.38+ and lld understand `-z pack-relative-relocs`; ld leaves the relocations as they
//! were when the C library it links against (glibc before 2.36) cannot read the packed form, so
//! the binary never needs more than the system it was built on. Other targets keep the default.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
