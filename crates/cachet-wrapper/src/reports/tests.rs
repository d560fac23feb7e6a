//! Tests of building and batching call reports.

use cachet_core::report::MAX_BATCH_BYTES;

use super::send::batch;
use super::*;

fn change(kind: &str) -> Change {
    Change {
        kind: kind.into(),
        name: "x".into(),
        before: None,
        after: None,
    }
}

#[test]
fn a_miss_is_blamed_on_its_most_telling_change() {
    use journal::Outcome as J;
    let own_source = [change("extern crate"), change("source file")];
    assert_eq!(
        cause(J::Miss, Some(&own_source)),
        Some(MissCause::SourceFile)
    );
    let flags = [change("source file"), change("argument")];
    assert_eq!(cause(J::Miss, Some(&flags)), Some(MissCause::Argument));
    assert_eq!(
        cause(J::Miss, Some(&[change("env! variable")])),
        Some(MissCause::Environment)
    );
    assert_eq!(cause(J::Miss, Some(&[])), Some(MissCause::SameInputs));
    assert_eq!(cause(J::Miss, None), Some(MissCause::FirstBuild));
    // A miss that is not stored is compared too (see explain::diff_unstored).
    assert_eq!(
        cause(J::MissNotStored, Some(&own_source)),
        Some(MissCause::SourceFile)
    );
    assert_eq!(cause(J::MissNotStored, None), Some(MissCause::FirstBuild));
    assert_eq!(cause(J::HitLocal, None), None);
}

#[test]
fn batches_stay_under_the_limit() {
    let line = vec![b'x'; 1000];
    let lines: Vec<&[u8]> = (0..3000).map(|_| &line[..]).collect();
    let (body, n) = batch(&lines);
    assert!(body.len() <= MAX_BATCH_BYTES);
    assert_eq!(n, MAX_BATCH_BYTES / 1001);
    let (_, n) = batch(&lines[..3]);
    assert_eq!(n, 3);
}

#[test]
fn the_build_id_is_stable_within_a_process_tree() {
    assert_eq!(build_id(), build_id());
    assert_eq!(build_id().len(), 16);
}
