//! Starting a job's shell: `posix_spawn` of `/bin/sh -c` in a process
//! group of its own, with /dev/null as stdin, its log files, a clean
//! environment and its signals back at their defaults.

use super::*;

/// Starts `/bin/sh -c COMMAND` in a new process group with stdin from
/// `/dev/null`, the given stdout and stderr (else `/dev/null`), an empty
/// signal mask, SIGINT, SIGHUP, SIGQUIT and SIGPIPE at their defaults, and `PROCPOOL_JOB_ID`
/// and `PROCPOOL_JOB_TOKEN` in its environment.
pub(super) fn spawn_shell(
    spec: &JobSpec,
    token: &str,
    logs: Option<(&File, &File)>,
) -> Result<Pid, String> {
    let command = CString::new(spec.command.as_str())
        .map_err(|_| "the command holds a NUL byte".to_string())?;
    let fail = |e: nix::Error| format!("cannot run /bin/sh: {}", e.desc());
    let null = dev_null().map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let (out, err) = logs.unwrap_or((null, null));
    let mut actions = PosixSpawnFileActions::init().map_err(fail)?;
    actions.add_dup2(null.as_raw_fd(), 0).map_err(fail)?;
    actions.add_dup2(out.as_raw_fd(), 1).map_err(fail)?;
    actions.add_dup2(err.as_raw_fd(), 2).map_err(fail)?;
    let mut attr = PosixSpawnAttr::init().map_err(fail)?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK,
    )
    .map_err(fail)?;
    attr.set_pgroup(Pid::from_raw(0)).map_err(fail)?;
    // Only what procpool itself ignores: a job keeps what its user ignored
    // (under nohup, SIGHUP stays ignored).
    let mut defaults = SigSet::empty();
    // The worker ignores the terminal's signals; a job gets them back.
    for signal in [
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        defaults.add(signal);
    }
    attr.set_sigdefault(&defaults).map_err(fail)?;
    attr.set_sigmask(&SigSet::empty()).map_err(fail)?;
    let job_id = CString::new(format!("{JOB_ID_VAR}={}", spec.id)).expect("no NUL in a number");
    let token = CString::new(format!("{JOB_TOKEN_VAR}={token}")).expect("no NUL in a token");
    let mut env: Vec<&CStr> = base_environment().iter().map(CString::as_c_str).collect();
    env.push(&job_id);
    env.push(&token);
    let args = [c"/bin/sh", c"-c", command.as_c_str()];
    posix_spawn(c"/bin/sh", &actions, &attr, &args, &env).map_err(fail)
}

/// `/dev/null` for reading and writing, opened once per worker.
pub(super) fn dev_null() -> io::Result<&'static File> {
    static NULL: OnceLock<File> = OnceLock::new();
    if let Some(file) = NULL.get() {
        return Ok(file);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    Ok(NULL.get_or_init(|| file))
}

/// The worker's environment as `NAME=value` strings, without `PROCPOOL_JOB_ID`.
pub(super) fn base_environment() -> &'static [CString] {
    static ENV: OnceLock<Vec<CString>> = OnceLock::new();
    ENV.get_or_init(|| {
        std::env::vars_os()
            .filter(|(name, _)| name != JOB_ID_VAR && name != JOB_TOKEN_VAR)
            .filter_map(|(name, value)| {
                let mut entry = name.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                CString::new(entry).ok()
            })
            .collect()
    })
}

pub(super) fn open_log(dir: &Path, id: u64, stream: &str, attempt: u32) -> Result<File, String> {
    let path = log_path(dir, id, stream);
    let mut options = OpenOptions::new();
    if attempt == 1 {
        options.write(true).create(true).truncate(true);
    } else {
        options.append(true).create(true);
    }
    options
        .open(&path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}
