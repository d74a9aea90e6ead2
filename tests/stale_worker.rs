//! A worker program whose task of the same name has other types (a stale
//! build, or a collision) is found in the handshake, before any input is
//! sent: one error naming the task and both type descriptions.

/// `double` here takes an `i64`; the hostile program's takes a `u8`.
#[procpool::task(name = "double")]
fn double(x: i64) -> i64 {
    x * 2
}

#[test]
fn a_task_of_one_name_and_other_types_stops_the_pool_before_any_input() {
    let program = env!("CARGO_BIN_EXE_procpool-hostile");
    let error = procpool::Pool::builder()
        .processes(2)
        .worker_program(program)
        .build()
        .map(|pool| pool.map(double, [3, 5, 10]))
        .unwrap_err();
    assert!(
        matches!(&error, procpool::PoolError::TaskTypes { name, .. } if name == "double"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "task \"double\" has types i64 -> i64 here but u8 -> u8 in worker program {program}"
        )
    );
    assert_eq!(double.call(4), 8);
}
