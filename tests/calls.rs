//! The calls of the pool as a Python user makes them: `map` gives values or
//! the first failure, `map_outcomes` tagged outcomes, and an input that
//! cannot be encoded costs that input alone, in every call.

use procpool::{Pool, PoolError, TaskError};
use serde::{Deserialize, Serialize, Serializer};

procpool::test_support!();

/// A number that refuses to be encoded when negative, as a type with a
/// fallible `Serialize` does.
#[derive(Debug, Clone, Copy, Deserialize)]
struct Fussy(i64);

impl Serialize for Fussy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 < 0 {
            return Err(serde::ser::Error::custom(format!("{} is negative", self.0)));
        }
        serializer.serialize_i64(self.0)
    }
}

#[procpool::task]
fn double(x: Fussy) -> i64 {
    2 * x.0
}

#[procpool::task]
fn halve(x: i64) -> Result<i64, String> {
    match x % 2 {
        0 => Ok(x / 2),
        _ => Err(format!("{x} is odd")),
    }
}

fn fussy(xs: &[i64]) -> Vec<Fussy> {
    xs.iter().copied().map(Fussy).collect()
}

fn is_unencodable(error: Option<&TaskError>, what: &str) -> bool {
    matches!(error, Some(TaskError::Encode { message }) if message.contains(what))
}

#[test]
fn map_gives_the_values_in_order_or_the_first_failure_with_what_came_before() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(halve, [2, 4, 6]).unwrap(), [1, 2, 3]);
    let stopped = pool.map(halve, [2, 4, 5, 6, 7]).unwrap_err();
    assert_eq!(stopped.finished, [1, 2]);
    match stopped.error {
        PoolError::Task {
            index: 2,
            error: TaskError::Failed { message },
        } => assert_eq!(message, "5 is odd"),
        other => panic!("{other}"),
    }
    let outcomes = pool.map_outcomes(halve, [2, 3]).unwrap();
    assert_eq!(outcomes[0].result, Ok(1));
    assert!(outcomes[1].error().is_some());
    assert!(outcomes.iter().all(|o| pool.pids().contains(&o.pid)));
}

#[test]
fn an_input_that_cannot_be_encoded_costs_that_input_alone() {
    let pool = Pool::builder().processes(2).chunksize(3).build().unwrap();
    let inputs = fussy(&[1, 2, -3, 4, 5, -6, -7, 8]);
    let outcomes = pool.map_outcomes(double, inputs.clone()).unwrap();
    assert_eq!(outcomes.len(), 8);
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.index, i as u64);
        match inputs[i].0 {
            x if x < 0 => assert!(
                is_unencodable(outcome.error(), &format!("{x} is negative")),
                "{outcome:?}"
            ),
            x => assert_eq!(outcome.result, Ok(2 * x)),
        }
    }
    // map: the values before it, then the input's own error.
    let stopped = pool.map(double, inputs.clone()).unwrap_err();
    assert_eq!(stopped.finished, [2, 4]);
    assert!(matches!(stopped.error, PoolError::Task { index: 2, .. }));
    // imap, in order and as completed: every other input still runs.
    let yielded: Vec<_> = pool.imap(double, inputs.clone()).collect();
    let ok: Vec<i64> = yielded
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(ok, [2, 4, 8, 10, 16]);
    assert!(matches!(yielded[5], Err(PoolError::Task { index: 5, .. })));
    let mut failed: Vec<u64> = pool
        .imap_unordered(double, inputs)
        .outcomes()
        .map(Result::unwrap)
        .filter(|o| is_unencodable(o.error(), "negative"))
        .map(|o| o.index)
        .collect();
    failed.sort();
    assert_eq!(failed, [2, 5, 6]);
    // One task: its handle says why, and the pool goes on.
    let error = pool.apply(double, Fussy(-1)).unwrap_err();
    assert!(
        matches!(&error, PoolError::Task { index: 0, error } if is_unencodable(Some(error), "-1")),
        "{error}"
    );
    assert_eq!(pool.apply(double, Fussy(21)).unwrap(), 42);
}
