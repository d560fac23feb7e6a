use super::*;

fn verdict(src: &str, deps: bool) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lib.rs");
    std::fs::write(&p, src).unwrap();
    prove_only_included(&[&p], &["OUT_DIR"], deps)
}

#[test]
fn the_include_form_is_proven() {
    let serde_like = r#"
        //! Mentions env!("OUT_DIR") in docs only.
        macro_rules! tri { ($e:expr) => { match $e { Ok(v) => v, Err(e) => return Err(e) } } }
        #[derive(Clone, Debug)]
        #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
        pub struct S;
        pub fn f() -> Result<u8, ()> { Ok(tri!(Ok(1))) + format!("{}", 1).len() as u8 }
        include!(concat!(env!("OUT_DIR"), "/private.rs"));
        const V: &str = include_str!(concat!(env!("OUT_DIR"), "/", "v.txt",));
        const N: &str = env!("CARGO_PKG_NAME");
    "#;
    assert_eq!(verdict(serde_like, true), Ok(()));
}

#[test]
fn every_other_use_or_unseen_macro_is_refused() {
    for (src, deps) in [
        (r#"const L: usize = env!("OUT_DIR").len();"#, false),
        (r#"const P: &str = concat!(env!("OUT_DIR"), "/x");"#, false),
        (r#"const P: Option<&str> = option_env!("OUT_DIR");"#, false),
        (
            r#"macro_rules! m { ($v:literal) => { env!($v) } } const P: &str = m!("OUT_DIR");"#,
            false,
        ),
        (r#"const P: &str = env!(concat!("OUT", "_DIR"));"#, false),
    ] {
        assert!(verdict(src, deps).is_err(), "{src}");
    }
    // The include form, refused when something before it could change what it means.
    let include = r#"include!(concat!(env!("OUT_DIR"), "/a.rs"));"#;
    for (before, deps) in [
        (r#"macro_rules! env { ($v:literal) => { "x" } }"#, false),
        (r#"use other::thing as concat;"#, false),
        (r#"other::m!();"#, true),
        (r#"unknown!();"#, true),
        (r#"#[derive(Serialize)] struct S;"#, true),
        (r#"#[tokio::main] fn main() {}"#, true),
        (r#"pub use other::*;"#, true),
        (r#"#[macro_use] extern crate other;"#, true),
        (r#"use other::format; fn f() { format!("x"); }"#, true),
        (r#"macro_rules! m { ($n:ident) => { $n!() } }"#, true),
    ] {
        let src = format!("{before} {include}");
        assert!(verdict(&src, deps).is_err(), "{src}");
    }
    // Without dependencies, no macro of another crate exists to run.
    assert_eq!(
        verdict(
            r#"unknown!(); include!(concat!(env!("OUT_DIR"), "/a.rs"));"#,
            false
        ),
        Ok(())
    );
}
