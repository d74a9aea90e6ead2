//! `procpool::test_support!()`: a test harness is its own worker program,
//! so `#[test]` functions build pools with the defaults.

procpool::test_support!();

#[procpool::task]
fn square(x: i64) -> i64 {
    x * x
}

#[procpool::task]
fn pid(_: ()) -> u32 {
    std::process::id()
}

#[test]
fn a_test_builds_a_pool_of_this_harness_in_one_line() {
    let pool = procpool::Pool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..6).unwrap(), [0, 1, 4, 9, 16, 25]);
    let workers = pool.pids();
    let ran = pool.apply(pid, ()).unwrap();
    assert!(
        workers.contains(&ran) && ran != std::process::id(),
        "{ran} {workers:?}"
    );
}

#[test]
fn tests_on_several_threads_each_have_a_pool() {
    let threads: Vec<_> = (0..3i64)
        .map(|t| {
            std::thread::spawn(move || {
                let pool = procpool::Pool::new(1).unwrap();
                pool.map(square, [t, t + 1]).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results, [vec![0, 1], vec![1, 4], vec![4, 9]]);
}
