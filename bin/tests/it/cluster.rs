//! Two hosts on one machine: the MPI backend across a network, for real.
//!
//! [`Cluster`] makes two network namespaces joined by a veth pair
//! (192.0.2.1 and 192.0.2.2, the documentation range), each "host" with a
//! hostname of its own (`unshare --uts`), and a launcher script that Open
//! MPI uses instead of ssh to start its daemon in the other namespace. TCP is
//! the only transport, so every message crosses the veth link. The two hosts
//! share the file system (as a cluster's shared home does). Needs root (CI
//! is); where namespaces cannot be made, each test says so on stderr and
//! fails if `PROCPOOL_REQUIRE_NETNS` is set (as CI sets it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{bin, show};

/// The two hosts' names and addresses.
const HOSTS: [(&str, &str); 2] = [("h1", "192.0.2.1"), ("h2", "192.0.2.2")];

/// Two simulated hosts; removed again when dropped, also when a test fails.
pub struct Cluster {
    /// The namespaces' names, in [`HOSTS`] order.
    namespaces: [String; 2],
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Makes the two hosts, or says why they cannot be made (and fails the
    /// test if `PROCPOOL_REQUIRE_NETNS` is set): `None` then.
    pub fn new() -> Option<Cluster> {
        match Cluster::make() {
            Ok(cluster) => Some(cluster),
            Err(why) if std::env::var_os("PROCPOOL_REQUIRE_NETNS").is_some() => {
                panic!("cannot simulate two hosts: {why}")
            }
            Err(why) => {
                eprintln!("SKIPPED: cannot simulate two hosts here ({why}); run as root to test");
                None
            }
        }
    }

    fn make() -> Result<Cluster, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "pp{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let namespaces = [format!("{id}h1"), format!("{id}h2")];
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let cluster = Cluster { namespaces, dir };
        let [a, b] = &cluster.namespaces;
        let (veth_a, veth_b) = (format!("{id}a"), format!("{id}b"));
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&[
            "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
        ])?;
        ip(&["link", "set", &veth_a, "netns", a])?;
        ip(&["link", "set", &veth_b, "netns", b])?;
        for (ns, veth, (_, addr)) in [(a, &veth_a, HOSTS[0]), (b, &veth_b, HOSTS[1])] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", veth])?;
            ip(&["-n", ns, "link", "set", veth, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        cluster.write_scripts().map_err(|e| e.to_string())?;
        Ok(cluster)
    }

    /// `agent` (what Open MPI runs instead of ssh: `agent HOST COMMAND...`)
    /// and `on HOST COMMAND...`, both of which run the command in the host's
    /// namespace under its own hostname; and the hostfile.
    fn write_scripts(&self) -> std::io::Result<()> {
        let mut cases = String::new();
        for ((name, addr), ns) in HOSTS.iter().zip(&self.namespaces) {
            cases += &format!("  {name}|{addr}) ns={ns}; name={name} ;;\n");
        }
        let on = format!(
            "#!/bin/sh\n# on HOST COMMAND...: runs COMMAND on a simulated host.\n\
             host=$1; shift\ncase $host in\n{cases}  *) echo \"no such host: $host\" >&2; exit 255 ;;\nesac\n\
             exec ip netns exec \"$ns\" unshare --uts sh -c 'hostname \"$0\" && exec \"$@\"' \"$name\" \"$@\"\n"
        );
        // ssh joins its arguments into one command line for the remote shell.
        let agent = format!(
            "#!/bin/sh\n# agent HOST COMMAND...: Open MPI's launcher, in place of ssh.\n\
             host=$1; shift\nexec {} \"$host\" sh -c \"$*\"\n",
            self.path("on").display()
        );
        let hostfile = HOSTS
            .iter()
            .map(|(_, addr)| format!("{addr} slots=8\n"))
            .collect::<String>();
        for (name, text, mode) in [
            ("on", on, 0o755),
            ("agent", agent, 0o755),
            ("hosts", hostfile, 0o644),
        ] {
            std::fs::write(self.path(name), text)?;
            std::fs::set_permissions(
                self.path(name),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )?;
        }
        Ok(())
    }

    /// A file in the cluster's scratch folder (shared by both hosts).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mpirun -n RANKS procpool ARGS...` started on h1, ranks filled host by
    /// host: `per_host` on h1 (rank 0 among them), the rest on h2. Its own
    /// session directory, as in tests/it/mpi.rs.
    pub fn mpirun(&self, ranks: u32, per_host: u32, args: &[&str], cwd: &Path) -> Command {
        let tmp = self.path(&format!("tmp{}", NEXT_RUN.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&tmp).unwrap();
        let hostfile = HOSTS
            .iter()
            .map(|(_, addr)| format!("{addr} slots={per_host}\n"))
            .collect::<String>();
        let hosts = self.path(&format!("hosts{ranks}x{per_host}"));
        std::fs::write(&hosts, hostfile).unwrap();
        let mut command = Command::new(self.path("on"));
        command
            .arg(HOSTS[0].0)
            .arg("mpirun")
            .args(["--hostfile", hosts.to_str().unwrap()])
            .args(["-n", &ranks.to_string()])
            .args([
                "--mca",
                "plm_rsh_agent",
                self.path("agent").to_str().unwrap(),
            ])
            .args(["--mca", "btl", "tcp,self"])
            .args(["--mca", "btl_tcp_if_include", "192.0.2.0/24"])
            .args(["--mca", "oob_tcp_if_include", "192.0.2.0/24"])
            .args(["-x", "TMPDIR", "-x", "PATH"])
            .arg(bin())
            .args(args)
            .env("TMPDIR", &tmp)
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .current_dir(cwd)
            .stdin(Stdio::null());
        command
    }

    /// Runs `mpirun` as [`mpirun`](Self::mpirun) does, to its end (at most
    /// two minutes).
    pub fn run(&self, ranks: u32, per_host: u32, args: &[&str], cwd: &Path) -> Output {
        let child = self
            .mpirun(ranks, per_host, args, cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mpirun starts (is Open MPI installed? see .ci/install-mpi)");
        wait_output(child, Duration::from_secs(120))
    }

    /// The PIDs (in the root namespace's view) of the processes running
    /// `procpool` inside host `index`'s namespace.
    pub fn procpools_on(&self, index: usize) -> Vec<u32> {
        let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.namespaces[index]])
            .output()
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "procpool")
            })
            .collect()
    }

    /// Every process still in either namespace.
    pub fn leftovers(&self) -> Vec<u32> {
        self.namespaces
            .iter()
            .flat_map(|ns| {
                Command::new("ip")
                    .args(["netns", "pids", ns])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .filter(|&p: &u32| crate::util::alive(p))
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// Waits up to `secs` for both namespaces to be empty of processes.
    pub fn assert_empty_within(&self, secs: f64) {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        while !self.leftovers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.leftovers();
        let names: Vec<String> = left
            .iter()
            .map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ")
            })
            .collect();
        assert!(left.is_empty(), "left running on the hosts: {names:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for pid in self.leftovers() {
            let _ = procpool::sys::kill(pid, libc::SIGKILL);
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

static NEXT_RUN: AtomicUsize = AtomicUsize::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Waits for `child` with a deadline and collects its output.
fn wait_output(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mpirun did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", show(out))))
        .collect()
}

/// The hosts named in a summary's workers list, by rank.
fn hosts_of(summary: &Value) -> Vec<(u64, String)> {
    summary["workers"]
        .as_array()
        .expect("a workers list")
        .iter()
        .map(|w| {
            (
                w["rank"].as_u64().unwrap(),
                w["host"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn square_runs_across_two_hosts_in_order() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    // 5 ranks: rank 0 and 1 on h1, 2 and 3 on h2... no: 2 slots a host, so
    // ranks 0-1 on h1 and 2-3 on h2, the fifth back on h1 (oversubscribed).
    let out = cluster.run(
        4,
        2,
        &[
            "--backend",
            "mpi",
            "--json",
            "--chunksize",
            "3",
            "square",
            "0..40",
        ],
        cluster.path("").as_path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let mut lines = json_lines(&out);
    let summary = lines.pop().unwrap()["summary"].clone();
    assert_eq!(summary["ok"], 40, "{summary}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i as u64);
        assert_eq!(line["output"], (i * i) as u64);
    }
    let hosts: BTreeSet<String> = hosts_of(&summary).into_iter().map(|(_, h)| h).collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["h1".into(), "h2".into()]),
        "{summary}"
    );
    let used: BTreeSet<&str> = lines.iter().filter_map(|l| l["host"].as_str()).collect();
    assert_eq!(used.len(), 2, "both hosts took work: {used:?}");
    cluster.assert_empty_within(10.0);
}

#[test]
fn whoami_names_host_and_rank_in_every_line() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    // Three ranks, not the machine's two cores: rank 0 on h1, 1 on h1, 2 on h2.
    let out = cluster.run(
        3,
        2,
        &["--backend", "mpi", "whoami", "0..9", "--max-delay-ms", "5"],
        cluster.path("").as_path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("x = ")).collect();
    assert_eq!(lines.len(), 9, "{stdout}");
    let mut seen = BTreeSet::new();
    for line in lines {
        let (_, place) = line
            .split_once(", rank ")
            .unwrap_or_else(|| panic!("{line}"));
        let (rank, host) = place.split_once(" on ").unwrap();
        assert!(
            (rank == "1" && host == "h1") || (rank == "2" && host == "h2"),
            "{line}"
        );
        seen.insert(host.to_string());
    }
    assert_eq!(seen.len(), 2, "{stdout}");
    cluster.assert_empty_within(10.0);
}

#[test]
fn pi_across_two_hosts_matches_the_local_pool() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let args = ["--json", "pi", "--seeds", "0..12", "--trials", "200000"];
    let local = Command::new(bin())
        .args(["-p", "2"])
        .args(args)
        .output()
        .unwrap();
    assert!(local.status.success(), "{}", show(&local));
    let mut mpi_args = vec!["--backend", "mpi"];
    mpi_args.extend(args);
    let out = cluster.run(5, 3, &mpi_args, cluster.path("").as_path());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let estimates = |out: &Output| -> Vec<(u64, String)> {
        json_lines(out)
            .iter()
            .filter(|l| l.get("summary").is_none())
            .map(|l| (l["seed"].as_u64().unwrap(), l["estimate"].to_string()))
            .collect()
    };
    assert_eq!(estimates(&out), estimates(&local));
    let summary = json_lines(&out).pop().unwrap()["summary"].clone();
    let hosts: BTreeSet<String> = hosts_of(&summary).into_iter().map(|(_, h)| h).collect();
    assert_eq!(hosts.len(), 2, "{summary}");
    cluster.assert_empty_within(10.0);
}

#[test]
fn jobs_across_two_hosts_record_both_hostnames_one_row_per_job() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let dir = cluster.path("jobs");
    std::fs::create_dir_all(&dir).unwrap();
    let lines: String = (0..12)
        .map(|i| format!("sleep 0.05; echo job {i}\n"))
        .collect();
    std::fs::write(dir.join("j.txt"), lines).unwrap();
    // Four ranks (three workers) on a two-core machine, no -p.
    let out = cluster.run(4, 2, &["--backend", "mpi", "jobs", "j.txt"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let status = std::fs::read_to_string(dir.join("j_status.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = status
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 12, "{status}");
    let ids: BTreeSet<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(ids.len(), 12, "one row per job: {status}");
    let hosts: BTreeSet<&str> = rows.iter().map(|r| r[2]).collect();
    assert_eq!(hosts, BTreeSet::from(["h1", "h2"]), "{status}");
    for i in 0..12 {
        let log = std::fs::read_to_string(dir.join(format!("j_logs/{i}.out"))).unwrap();
        assert_eq!(log, format!("job {i}\n"));
    }
    cluster.assert_empty_within(10.0);
}

#[test]
fn flip_across_two_hosts_writes_into_the_shared_folder() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let dir = cluster.path("photos");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..10 {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([x as u8 * 4, y as u8 * 5, i * 20])
        });
        img.save(dir.join(format!("p{i}.png"))).unwrap();
    }
    let out = cluster.run(
        4,
        2,
        &[
            "--backend",
            "mpi",
            "--json",
            "flip",
            "--format",
            "png",
            "--out",
            "out",
            ".",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let lines = json_lines(&out);
    let hosts: BTreeSet<&str> = lines.iter().filter_map(|l| l["host"].as_str()).collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["h1", "h2"]),
        "both hosts flipped: {}",
        show(&out)
    );
    for i in 0..10 {
        let flipped = image::open(dir.join(format!("out/p{i}_flipped.png"))).unwrap();
        assert_eq!((flipped.width(), flipped.height()), (64, 48));
    }
    cluster.assert_empty_within(10.0);
}

/// Starts a long pi run across the hosts and waits until `finished` seeds
/// are printed; returns the run and what it printed so far.
fn pi_under_way(cluster: &Cluster, finished: usize) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cluster
        .mpirun(
            4,
            2,
            &[
                "--backend",
                "mpi",
                "--json",
                "--chunksize",
                "1",
                "pi",
                "--seeds",
                "0..400",
                "--trials",
                "3000000",
            ],
            cluster.path("").as_path(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < finished {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => seen.push(line),
            Err(_) if Instant::now() > deadline => panic!("no progress: {seen:?}"),
            Err(_) => {}
        }
    }
    // Put the lines back for the caller.
    let (tx2, rx2) = std::sync::mpsc::channel();
    for line in seen {
        tx2.send(line).unwrap();
    }
    std::thread::spawn(move || {
        while let Ok(line) = rx.recv() {
            if tx2.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx2)
}

#[test]
fn a_host_lost_mid_run_ends_the_job_naming_it_and_keeps_every_printed_result() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let (mut child, lines) = pi_under_way(&cluster, 3);
    // Every rank on h2 dies at once, as when the machine goes down.
    let on_h2 = cluster.procpools_on(1);
    assert!(!on_h2.is_empty(), "ranks on h2");
    for pid in &on_h2 {
        let _ = procpool::sys::kill(*pid, libc::SIGKILL);
    }
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the job did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = killed.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let printed: Vec<String> = lines.try_iter().collect();
    assert!(!status.success(), "{stderr}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    // mpirun names the rank and the host that failed.
    assert!(
        stderr.contains("192.0.2.2") || stderr.contains("h2"),
        "{stderr}"
    );
    // Every result printed is whole and correct JSON, at least the three seen.
    let results: Vec<Value> = printed
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &Value| v.get("summary").is_none())
        .collect();
    assert!(results.len() >= 3, "{printed:?}");
    // Rank 0, stopped by mpirun, said what finished and what to run again;
    // every result it counted is on stdout.
    if let Some(line) = stderr.lines().find(|l| l.contains("seeds finished")) {
        let counted: usize = line
            .split("; ")
            .nth(1)
            .and_then(|part| part.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(results.len(), counted, "{line}");
        assert!(line.contains("not finished: "), "{line}");
    }
    cluster.assert_empty_within(10.0);
}

#[test]
fn jobs_on_a_lost_host_leave_a_row_for_every_reported_job_and_resume_finishes() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let dir = cluster.path("lost");
    std::fs::create_dir_all(&dir).unwrap();
    let lines: String = (0..16)
        .map(|i| format!("sleep 0.3; echo done {i}\n"))
        .collect();
    std::fs::write(dir.join("j.txt"), lines).unwrap();
    let child = cluster
        .mpirun(4, 2, &["--backend", "mpi", "--json", "jobs", "j.txt"], &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = dir.join("j_status.tsv");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&status_path).map_or(0, |s| s.lines().count()) < 4 {
        assert!(Instant::now() < deadline, "no job finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    for pid in cluster.procpools_on(1) {
        let _ = procpool::sys::kill(pid, libc::SIGKILL);
    }
    let out = wait_output(child, Duration::from_secs(30));
    assert!(!out.status.success(), "{}", show(&out));
    // Every job rank 0 reported has its row, and every row is a job that ran
    // to its end.
    let status = std::fs::read_to_string(&status_path).unwrap();
    let rows: Vec<Vec<String>> = status
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    let row_ids: BTreeSet<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    let reported: BTreeSet<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["job_id"].as_u64())
        .collect();
    assert!(reported.is_subset(&row_ids), "{reported:?} {row_ids:?}");
    // A job that a rank on h2 held when the host was lost is recorded as
    // lost (a worker failure), named with that rank on stderr; every other
    // row is a job that ran to its end.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lost = 0;
    for row in &rows {
        if row[1] == procpool_cli::jobs::WORKER_FAILED.to_string() {
            let named = stderr.lines().any(|l| {
                l.starts_with(&format!("procpool: job {} ", row[0])) && l.contains(" on h2 ")
            });
            assert!(named, "{row:?}\n{stderr}");
            lost += 1;
            continue;
        }
        assert_eq!(row[1], "0", "{row:?}");
        let log = std::fs::read_to_string(dir.join(format!("j_logs/{}.out", row[0]))).unwrap();
        assert_eq!(log, format!("done {}\n", row[0]));
    }
    assert!(lost <= 2, "at most one job a rank on h2: {status}");
    assert!(row_ids.len() < 16, "the host was lost before the end");
    cluster.assert_empty_within(10.0);
    // What was not recorded runs again, on what is left: here one host.
    let again = Command::new(bin())
        .current_dir(&dir)
        .args(["-p", "2", "jobs", "j.txt", "--resume"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", show(&again));
    let status = std::fs::read_to_string(&status_path).unwrap();
    let done: BTreeSet<&str> = status
        .lines()
        .skip(1)
        .filter(|l| l.split('\t').nth(1) == Some("0"))
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(done.len(), 16, "{status}");
}

#[test]
fn a_timeline_across_two_hosts_names_them_and_says_how_sure_its_clock_is() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let trace_path = cluster.path("across.json");
    let out = cluster.run(
        4,
        2,
        &[
            "--backend",
            "mpi",
            "--json",
            "sleep",
            "20",
            "20",
            "20",
            "20",
            "20",
            "20",
            "--timeline",
            trace_path.to_str().unwrap(),
        ],
        cluster.path("").as_path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let results: Vec<Value> = json_lines(&out)
        .into_iter()
        .filter(|l| l.get("index").is_some())
        .collect();
    let trace: Value = serde_json::from_slice(&std::fs::read(&trace_path).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    // Every worker's lane names its host, and both hosts have one.
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.contains(" h1 ")), "{names:?}");
    assert!(names.iter().any(|n| n.contains(" h2 ")), "{names:?}");
    // Each task's span is on its worker's lane and lasts what the worker
    // measured; it starts after the pool did, on rank 0's clock.
    for result in &results {
        let span = events
            .iter()
            .find(|e| e["ph"] == "X" && e["args"]["index"] == result["index"])
            .unwrap_or_else(|| panic!("no span for {result}"));
        assert_eq!(span["pid"], result["pid"]);
        assert!(span["ts"].as_f64().unwrap() >= 0.0, "{span}");
        let trace_ms = span["dur"].as_f64().unwrap() / 1e3;
        assert!((trace_ms - result["elapsed_ms"].as_f64().unwrap()).abs() < 0.0011);
    }
    // The offsets were measured over the link: some uncertainty, well under
    // a task's length.
    let uncertainty = trace["otherData"]["clock_uncertainty_us"].as_f64().unwrap();
    assert!(
        uncertainty > 0.0 && uncertainty < 20_000.0,
        "{uncertainty} µs"
    );
    cluster.assert_empty_within(10.0);
}
