//! What a progress bar reads: `imap`'s exact length, and the builder's
//! progress callback.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressBarIter, ProgressDrawTarget, ProgressIterator};
use procpool::{Pool, Progress};

procpool::test_support!();

/// `x * x`; a negative input fails.
#[procpool::task]
fn square(x: i64) -> Result<i64, String> {
    if x < 0 {
        return Err(format!("{x} is negative"));
    }
    Ok(x * x)
}

#[test]
fn imap_counts_down_its_exact_length_as_it_yields() {
    let pool = Pool::builder().processes(2).chunksize(3).build().unwrap();
    for ordered in [true, false] {
        let mut results = if ordered {
            pool.imap(square, vec![1i64, 2, 3, 4, 5, 6, 7]).outcomes()
        } else {
            pool.imap_unordered(square, vec![1i64, 2, 3, 4, 5, 6, 7])
                .outcomes()
        };
        for left in (1..=7).rev() {
            assert_eq!(results.len(), left);
            results.next().unwrap().unwrap();
        }
        assert_eq!(results.size_hint(), (0, Some(0)));
        assert!(results.next().is_none());
    }
    // An endless input has no upper bound; a filtered one no exact length.
    assert_eq!(pool.imap(square, 0i64..).size_hint(), (usize::MAX, None));
    let filtered = pool.imap(square, (0i64..10).filter(|x| x % 2 == 0));
    assert_eq!(filtered.size_hint(), (0, Some(10)));
    assert_eq!(filtered.count(), 5);
}

#[test]
fn imap_that_stops_early_never_promises_less_than_it_yields() {
    let flag = procpool::signal::InterruptFlag::default();
    let pool = Pool::builder()
        .processes(1)
        .interrupt_flag(flag.clone())
        .build()
        .unwrap();
    let mut results = pool.imap(square, 0i64..1000);
    results.next().unwrap().unwrap();
    flag.raise(libc::SIGINT);
    let mut hints = vec![results.size_hint()];
    let mut items = Vec::new();
    while let Some(item) = results.next() {
        items.push(item.is_ok());
        hints.push(results.size_hint());
    }
    // It ends with the error, well before the thousand it first announced;
    // what it announces is never fewer than what is still to come.
    assert_eq!(items.last(), Some(&false), "{items:?}");
    assert!(items.len() < 999, "{}", items.len());
    for (i, (low, high)) in hints.iter().enumerate() {
        let left = items.len() - i;
        assert!(
            high.is_some_and(|h| h >= left) && *low >= left.min(1),
            "{i}: {hints:?}"
        );
    }
    assert_eq!(hints.last(), Some(&(0, Some(0))));
}

#[test]
fn the_progress_callback_sees_every_result_and_failure_of_each_call() {
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let log = Arc::clone(&seen);
    let pool = Pool::builder()
        .processes(2)
        .chunksize(4)
        .on_progress(move |p| log.lock().unwrap().push(p))
        .build()
        .unwrap();
    let take = || std::mem::take(&mut *seen.lock().unwrap());
    let last = |calls: &[Progress]| *calls.last().unwrap();

    let inputs = [3i64, -1, 4, -1, 5, 9, 2, 6, 5, 3];
    pool.map_outcomes(square, inputs).unwrap();
    let calls = take();
    assert_eq!(
        last(&calls),
        Progress {
            done: 10,
            failed: 2,
            running: 0,
            total: Some(10)
        }
    );
    // Once per chunk, counting up.
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].done < w[1].done), "{calls:?}");
    // Every chunk was sent before the first came back.
    assert_eq!((calls[0].done, calls[0].running), (4, 6), "{calls:?}");

    assert_eq!(pool.map(square, 0i64..9).unwrap().len(), 9);
    assert_eq!(
        last(&take()),
        Progress {
            done: 9,
            failed: 0,
            running: 0,
            total: Some(9)
        }
    );

    let failed = pool.imap_unordered(square, inputs).filter(Result::is_err);
    assert_eq!(failed.count(), 2);
    assert_eq!(
        last(&take()),
        Progress {
            done: 10,
            failed: 2,
            running: 0,
            total: Some(10)
        }
    );

    // An input of unknown length has no total.
    let odd = (0i64..20).filter(|x| x % 2 == 1);
    assert_eq!(pool.imap(square, odd).count(), 10);
    assert_eq!(
        last(&take()),
        Progress {
            done: 10,
            failed: 0,
            running: 0,
            total: None
        }
    );
}

/// Consumes `bar` (drawn nowhere) and returns what it ended with: its
/// length, its position, and the items it passed on.
fn run_bar<I: Iterator>(bar: ProgressBarIter<I>) -> (Option<u64>, u64, usize) {
    let shown = bar.progress.clone();
    shown.set_draw_target(ProgressDrawTarget::hidden());
    let length = shown.length();
    let items = bar.count();
    (length, shown.position(), items)
}

#[test]
fn indicatif_shows_the_exact_total_of_ranges_vectors_and_chunked_calls() {
    let pool = Pool::builder().processes(2).build().unwrap();
    let inputs: Vec<i64> = (0..37).collect();
    // A range of a type std calls exact, and one it gives only an exact hint.
    let range = (0i32..41).map(i64::from);
    assert_eq!(
        run_bar(pool.imap(square, range).progress()),
        (Some(41), 41, 41)
    );
    let bar = pool.imap(square, 0i64..43).try_progress();
    assert_eq!(
        run_bar(bar.expect("a hint that is exact")),
        (Some(43), 43, 43)
    );
    // Vectors, in order or not, chunked by the call or by the pool.
    for chunksize in [1, 5, 37, 100] {
        let ordered = pool.imap(square, inputs.clone()).chunksize(chunksize);
        assert_eq!(
            run_bar(ordered.progress()),
            (Some(37), 37, 37),
            "{chunksize}"
        );
        let unordered = pool.imap_unordered(square, inputs.clone());
        let outcomes = unordered.chunksize(chunksize).outcomes();
        assert_eq!(
            run_bar(outcomes.progress()),
            (Some(37), 37, 37),
            "{chunksize}"
        );
    }
    let chunked = Pool::builder().processes(2).chunksize(8).build().unwrap();
    assert_eq!(
        run_bar(chunked.imap(square, inputs.clone()).progress()),
        (Some(37), 37, 37)
    );
    // A length nobody knows: no total, but a count and a rate.
    let odd = inputs.into_iter().filter(|x| x % 2 == 1);
    let bar = pool
        .imap(square, odd)
        .progress_with(ProgressBar::no_length());
    let shown = bar.progress.clone();
    assert_eq!(run_bar(bar), (None, 18, 18));
    assert!(shown.per_sec() > 0.0, "{}", shown.per_sec());
}
