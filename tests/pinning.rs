//! Workers bound to CPUs of their own, read back from the kernel
//! (`/proc/PID/status`), with the default builder.

procpool::test_support!();

#[procpool::task]
fn square(x: i64) -> i64 {
    x * x
}

/// The CPUs a process may run on, as the kernel lists them ("0-1", "3").
fn allowed(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

fn cpus() -> usize {
    std::thread::available_parallelism().unwrap().get()
}

fn assert_one_cpu_each(pool: &procpool::Pool) {
    let mut lists: Vec<String> = pool.pids().into_iter().map(allowed).collect();
    assert!(
        lists.iter().all(|l| l.parse::<usize>().is_ok()),
        "each worker on one CPU: {lists:?}"
    );
    lists.sort();
    lists.dedup();
    assert_eq!(lists.len(), pool.processes(), "no CPU shared: {lists:?}");
}

#[test]
fn as_many_workers_as_cpus_each_get_one_and_a_replacement_takes_the_freed_one() {
    let pool = procpool::Pool::builder().retries(1).build().unwrap();
    assert_eq!(pool.processes(), cpus());
    assert_one_cpu_each(&pool);
    let victim = pool.pids()[0];
    // SAFETY: kill sends a signal to a worker of ours.
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    // The next map meets the dead worker and replaces it.
    for _ in 0..100 {
        if !pool.pids().contains(&victim) {
            break;
        }
        assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
    }
    assert!(
        !pool.pids().contains(&victim),
        "{victim} was never replaced"
    );
    assert_eq!(pool.pids().len(), pool.processes());
    assert_one_cpu_each(&pool);
}

#[test]
fn workers_are_left_free_when_asked_or_when_there_are_more_than_cpus() {
    let ours = allowed(std::process::id());
    let free = procpool::Pool::builder()
        .pin_workers(false)
        .build()
        .unwrap();
    let crowded = procpool::Pool::new(cpus() + 1).unwrap();
    for pid in free.pids().into_iter().chain(crowded.pids()) {
        assert_eq!(allowed(pid), ours, "worker {pid}");
    }
}
